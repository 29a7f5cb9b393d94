/* SoC Console Linux API subset: see soc/kapi.h */
#include <soc/kapi.h>
