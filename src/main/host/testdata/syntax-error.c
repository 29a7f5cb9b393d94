#include <linux/iommu.h>

static int broken(void)
{
	return undeclared_thing + 1;
}
