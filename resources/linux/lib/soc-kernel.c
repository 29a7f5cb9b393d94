/*
 * The C half of SoC Console's Linux API subset (soc/kapi.h): the parts a driver's address space
 * keeps (kmalloc, the device objects, printk formatting, IRQ handler table), and the entry points
 * the engine calls (__soc_*). Everything that touches the simulated SoC is an import from the
 * engine (src/sim/kernel/cdriver/runtime.ts).
 */
#include <soc/kapi.h>

#define SOC_EXPORT(name) __attribute__((export_name(#name)))
#define SOC_IMPORT(name) __attribute__((import_module("soc"), import_name(#name)))

/* ---- engine imports (not preemption points unless said) ---- */
SOC_IMPORT(log) void soc_log(int level, const char *msg, int len);
SOC_IMPORT(page_alloc) u32 soc_page_alloc(int cache, unsigned int order, int zero);
SOC_IMPORT(page_free) void soc_page_free(u32 va, unsigned int order);
SOC_IMPORT(cache_create) int soc_cache_create(const char *name, unsigned int size);
SOC_IMPORT(cache_alloc) u32 soc_cache_alloc(int cache, int zero);
SOC_IMPORT(cache_free) void soc_cache_free(int cache, u32 va);
SOC_IMPORT(dma_sync) void soc_dma_sync(u32 pa_lo, u32 pa_hi, u32 size, int dir);
SOC_IMPORT(fault) int soc_report_fault(int domain, int dev, u32 iova, int flags);
/* The instance's clock gates and reset lines (the config's clocks and resets). */
SOC_IMPORT(clk_gate) int soc_clk_gate(int on);
SOC_IMPORT(reset_line) int soc_reset_line(int asserted);
SOC_IMPORT(device_link) int soc_device_link(int consumer, int supplier, u32 flags, const struct soc_site *site);

/* ---- kmalloc: size classes in wasm memory (no engine state, so a memory snapshot is the whole heap) ---- */
#define SOC_CLASSES 9
static void *soc_free_list[SOC_CLASSES];
static unsigned char *soc_brk;
static unsigned char *soc_brk_end;
extern unsigned char __heap_base;

static void *soc_morecore(size_t n)
{
	if (!soc_brk) {
		soc_brk = (unsigned char *)ALIGN((uintptr_t)&__heap_base, 16);
		soc_brk_end = (unsigned char *)(__builtin_wasm_memory_size(0) * 65536);
	}
	if (soc_brk + n > soc_brk_end) {
		size_t pages = DIV_ROUND_UP(n + 65536, 65536);
		if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1)
			return NULL;
		soc_brk_end = (unsigned char *)(__builtin_wasm_memory_size(0) * 65536);
	}
	void *p = soc_brk;
	soc_brk += n;
	return p;
}

/* The engine reserves its fibers' stacks first; the heap starts after them. */
SOC_EXPORT(__soc_heap_init) void soc_heap_init(u32 start)
{
	soc_brk = (unsigned char *)ALIGN((uintptr_t)start, 16);
	soc_brk_end = (unsigned char *)(__builtin_wasm_memory_size(0) * 65536);
}

/* A block: 16-byte header holding its class (or its size for large blocks), then the data. */
void *kmalloc(size_t size, gfp_t gfp)
{
	int c = 0;
	while (c < SOC_CLASSES && (16UL << c) < size)
		c++;
	u32 *h;
	if (c < SOC_CLASSES) {
		if (soc_free_list[c]) {
			h = soc_free_list[c];
			soc_free_list[c] = *(void **)(h + 4);
		} else {
			h = soc_morecore(16 + (16UL << c));
			if (!h)
				return NULL;
		}
		h[0] = c;
	} else {
		h = soc_morecore(16 + ALIGN(size, 16));
		if (!h)
			return NULL;
		h[0] = 0x100 + ALIGN(size, 16);
	}
	void *p = h + 4;
	if (gfp & __GFP_ZERO)
		__builtin_memset(p, 0, c < SOC_CLASSES ? (16UL << c) : size);
	return p;
}

void kfree(const void *p)
{
	if (!p || IS_ERR(p))
		return;
	u32 *h = (u32 *)p - 4;
	if (h[0] < SOC_CLASSES) {
		*(void **)p = soc_free_list[h[0]];
		soc_free_list[h[0]] = h;
	}
}

void *kzalloc(size_t size, gfp_t gfp) { return kmalloc(size, gfp | __GFP_ZERO); }
void *kcalloc(size_t n, size_t size, gfp_t gfp) { return kmalloc(n * size, gfp | __GFP_ZERO); }
void *kmalloc_array(size_t n, size_t size, gfp_t gfp) { return kmalloc(n * size, gfp); }
char *kstrdup(const char *s, gfp_t gfp)
{
	size_t n = strlen(s) + 1;
	char *d = kmalloc(n, gfp);
	if (d)
		__builtin_memcpy(d, s, n);
	return d;
}
void *devm_kmalloc(struct device *dev, size_t size, gfp_t gfp) { return kmalloc(size, gfp); }
void *devm_kzalloc(struct device *dev, size_t size, gfp_t gfp) { return kzalloc(size, gfp); }
void *devm_kcalloc(struct device *dev, size_t n, size_t size, gfp_t gfp) { return kcalloc(n, size, gfp); }
void devm_kfree(struct device *dev, const void *p) { kfree(p); }

/* ---- string.h ---- */
#undef memset
#undef memcpy
#undef memmove
void *memset(void *s, int c, size_t n)
{
	unsigned char *p = s;
	if (((uintptr_t)p & 3) == 0 && (n & 3) == 0) {
		u32 w = (u8)c * 0x01010101u;
		for (size_t i = 0; i < n; i += 4)
			*(volatile u32 *)(p + i) = w;
		return s;
	}
	for (size_t i = 0; i < n; i++)
		((volatile unsigned char *)p)[i] = (unsigned char)c;
	return s;
}
void *memcpy(void *d, const void *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		((volatile unsigned char *)d)[i] = ((const unsigned char *)s)[i];
	return d;
}
void *memmove(void *d, const void *s, size_t n)
{
	if (d < s)
		return memcpy(d, s, n);
	for (size_t i = n; i > 0; i--)
		((volatile unsigned char *)d)[i - 1] = ((const unsigned char *)s)[i - 1];
	return d;
}
int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] - y[i];
	return 0;
}
size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}
int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}
char *strncpy(char *d, const char *s, size_t n)
{
	size_t i = 0;
	for (; i < n && s[i]; i++)
		d[i] = s[i];
	for (; i < n; i++)
		d[i] = 0;
	return d;
}

/* ---- printk with the kernel's %p extensions (%pa %pad %px %pK %pe %pOF %ps) ---- */
struct soc_buf {
	char *p;
	size_t n;
	size_t len;
};

static void soc_put(struct soc_buf *b, char c)
{
	if (b->len + 1 < b->n)
		b->p[b->len] = c;
	b->len++;
}

static void soc_puts(struct soc_buf *b, const char *s)
{
	if (!s)
		s = "(null)";
	while (*s)
		soc_put(b, *s++);
}

static void soc_num(struct soc_buf *b, u64 v, int base, int upper, int width, char pad, int neg, int prefix)
{
	char tmp[24];
	int i = 0;
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	do {
		tmp[i++] = digits[v % base];
		v /= base;
	} while (v);
	int extra = (neg ? 1 : 0) + (prefix ? 2 : 0);
	if (pad == '0') {
		if (neg)
			soc_put(b, '-');
		if (prefix) {
			soc_put(b, '0');
			soc_put(b, 'x');
		}
	}
	for (int w = i + extra; w < width; w++)
		soc_put(b, pad);
	if (pad != '0') {
		if (neg)
			soc_put(b, '-');
		if (prefix) {
			soc_put(b, '0');
			soc_put(b, 'x');
		}
	}
	while (i)
		soc_put(b, tmp[--i]);
}

static const char *soc_errname(int e)
{
	switch (e) {
	case ENOMEM: return "ENOMEM";
	case EINVAL: return "EINVAL";
	case EBUSY: return "EBUSY";
	case ENODEV: return "ENODEV";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EIO: return "EIO";
	case ENOENT: return "ENOENT";
	case EPROBE_DEFER: return "EPROBE_DEFER";
	case ENOSPC: return "ENOSPC";
	case EEXIST: return "EEXIST";
	default: return NULL;
	}
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct soc_buf b = { buf, size, 0 };
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			soc_put(&b, *fmt);
			continue;
		}
		fmt++;
		int alt = 0, left = 0, width = 0, lng = 0;
		char pad = ' ';
		for (;; fmt++) {
			if (*fmt == '#')
				alt = 1;
			else if (*fmt == '0')
				pad = '0';
			else if (*fmt == '-')
				left = 1;
			else if (*fmt == ' ' || *fmt == '+')
				;
			else
				break;
		}
		if (*fmt == '*') {
			width = va_arg(ap, int);
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		if (*fmt == '.') {
			fmt++;
			if (*fmt == '*') {
				(void)va_arg(ap, int);
				fmt++;
			}
			while (*fmt >= '0' && *fmt <= '9')
				fmt++;
		}
		(void)left;
		for (;; fmt++) {
			if (*fmt == 'l')
				lng++;
			else if (*fmt == 'z' || *fmt == 'h' || *fmt == 't')
				;
			else
				break;
		}
		switch (*fmt) {
		case 'd':
		case 'i': {
			s64 v = lng >= 2 ? va_arg(ap, s64) : (s64)va_arg(ap, long);
			soc_num(&b, v < 0 ? (u64)-v : (u64)v, 10, 0, width, pad, v < 0, 0);
			break;
		}
		case 'u': {
			u64 v = lng >= 2 ? va_arg(ap, u64) : (u64)va_arg(ap, unsigned long);
			soc_num(&b, v, 10, 0, width, pad, 0, 0);
			break;
		}
		case 'x':
		case 'X': {
			u64 v = lng >= 2 ? va_arg(ap, u64) : (u64)va_arg(ap, unsigned long);
			soc_num(&b, v, 16, *fmt == 'X', width, pad, 0, alt);
			break;
		}
		case 'o': {
			u64 v = lng >= 2 ? va_arg(ap, u64) : (u64)va_arg(ap, unsigned long);
			soc_num(&b, v, 8, 0, width, pad, 0, 0);
			break;
		}
		case 'c':
			soc_put(&b, (char)va_arg(ap, int));
			break;
		case 's':
			soc_puts(&b, va_arg(ap, const char *));
			break;
		case 'p': {
			void *p = va_arg(ap, void *);
			char ext = fmt[1];
			if (ext == 'a') {
				/* %pa: phys_addr_t *, %pad: dma_addr_t *, printed as 0x%016llx like arm64. */
				fmt++;
				if (fmt[1] == 'd' || fmt[1] == 'p')
					fmt++;
				soc_num(&b, *(const u64 *)p, 16, 0, 18, '0', 0, 1);
			} else if (ext == 'e') {
				fmt++;
				const char *n = soc_errname(-(int)(long)p);
				if (n)
					soc_puts(&b, n);
				else
					soc_num(&b, (u64)(s64)(long)p, 10, 0, 0, ' ', 0, 0);
			} else if (ext == 'O' && fmt[2] == 'F') {
				fmt += 2;
				soc_puts(&b, p ? ((struct device_node *)p)->name : "(null)");
			} else if (ext == 's' || ext == 'S') {
				fmt++;
				soc_puts(&b, "(function)");
			} else {
				if (ext == 'x' || ext == 'K')
					fmt++;
				soc_num(&b, (uintptr_t)p, 16, 0, 0, ' ', 0, 1);
			}
			break;
		}
		case '%':
			soc_put(&b, '%');
			break;
		default:
			soc_put(&b, '%');
			soc_put(&b, *fmt);
			break;
		}
		if (!*fmt)
			break;
	}
	if (size)
		buf[b.len < size ? b.len : size - 1] = 0;
	return (int)b.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

static void soc_emit(int level, const char *prefix, const char *fmt, va_list ap)
{
	char line[512];
	int off = 0;
	if (prefix) {
		off = snprintf(line, sizeof(line), "%s: ", prefix);
		if (off >= (int)sizeof(line))
			off = sizeof(line) - 1;
	}
	int n = vsnprintf(line + off, sizeof(line) - off, fmt, ap) + off;
	if (n >= (int)sizeof(line))
		n = sizeof(line) - 1;
	while (n > 0 && line[n - 1] == '\n')
		n--;
	soc_log(level, line, n);
}

int printk(const char *fmt, ...)
{
	int level = 6;
	if (fmt[0] == '\001' && fmt[1] >= '0' && fmt[1] <= '7') {
		level = fmt[1] - '0';
		fmt += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	soc_emit(level, NULL, fmt, ap);
	va_end(ap);
	return 0;
}

void __soc_dev_printk(int level, const struct device *dev, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	soc_emit(level, dev ? dev_name(dev) : NULL, fmt, ap);
	va_end(ap);
}

/* ---- devices: the IOMMU's platform device and the masters behind it ---- */
#define SOC_MAX_DEVICES 64
static struct device *soc_devices[SOC_MAX_DEVICES];
static struct platform_device *soc_iommu_pdev;

const char *dev_name(const struct device *dev) { return dev->init_name; }

static struct dev_iommu *soc_dev_iommu(struct device *dev)
{
	if (!dev->iommu)
		dev->iommu = kzalloc(sizeof(*dev->iommu), GFP_KERNEL);
	return dev->iommu;
}

void dev_iommu_priv_set(struct device *dev, void *priv) { soc_dev_iommu(dev)->priv = priv; }

struct iommu_fwspec *dev_iommu_fwspec_get(struct device *dev) { return dev->iommu ? dev->iommu->fwspec : NULL; }

int iommu_fwspec_init(struct device *dev, struct fwnode_handle *fwnode)
{
	struct dev_iommu *di = soc_dev_iommu(dev);
	if (!di->fwspec)
		di->fwspec = kzalloc(sizeof(*di->fwspec), GFP_KERNEL);
	di->fwspec->iommu_fwnode = fwnode;
	return 0;
}

int iommu_fwspec_add_ids(struct device *dev, const u32 *ids, int num)
{
	struct dev_iommu *di = soc_dev_iommu(dev);
	if (!di->fwspec)
		iommu_fwspec_init(dev, soc_iommu_pdev ? soc_iommu_pdev->dev.fwnode : NULL);
	for (int i = 0; i < num && di->fwspec->num_ids < ARRAY_SIZE(di->fwspec->ids); i++)
		di->fwspec->ids[di->fwspec->num_ids++] = ids[i];
	return 0;
}

SOC_EXPORT(__soc_new_device) struct device *soc_new_device(const char *name, int id)
{
	struct device *dev;
	if (id == 0) {
		struct platform_device *pdev = kzalloc(sizeof(*pdev), GFP_KERNEL);
		pdev->name = name;
		pdev->id = -1;
		soc_iommu_pdev = pdev;
		dev = &pdev->dev;
	} else {
		dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	}
	dev->init_name = name;
	dev->soc_id = id;
	dev->of_node = kzalloc(sizeof(*dev->of_node), GFP_KERNEL);
	dev->of_node->name = name;
	dev->of_node->dev = dev;
	dev->fwnode = kzalloc(sizeof(*dev->fwnode), GFP_KERNEL);
	dev->fwnode->np = dev->of_node;
	dev->coherent_dma_mask = DMA_BIT_MASK(32);
	dev->dma_mask = &dev->coherent_dma_mask;
	if (id < SOC_MAX_DEVICES)
		soc_devices[id] = dev;
	return dev;
}

/* The IOMMU's register windows and interrupt, from the SoC config. */
SOC_EXPORT(__soc_set_resources) void soc_set_resources(int nreg, const u32 *regs, int irq)
{
	struct platform_device *pdev = soc_iommu_pdev;
	pdev->num_resources = nreg + (irq >= 0 ? 1 : 0);
	pdev->resource = kcalloc(pdev->num_resources, sizeof(struct resource), GFP_KERNEL);
	for (int i = 0; i < nreg; i++) {
		pdev->resource[i].start = regs[2 * i];
		pdev->resource[i].end = (u64)regs[2 * i] + regs[2 * i + 1] - 1;
		pdev->resource[i].flags = IORESOURCE_MEM;
		pdev->resource[i].name = pdev->name;
	}
	if (irq >= 0) {
		pdev->resource[nreg].start = pdev->resource[nreg].end = irq;
		pdev->resource[nreg].flags = IORESOURCE_IRQ;
	}
}

struct resource *platform_get_resource(struct platform_device *pdev, unsigned int type, unsigned int num)
{
	for (u32 i = 0; i < pdev->num_resources; i++)
		if ((pdev->resource[i].flags & type) && num-- == 0)
			return &pdev->resource[i];
	return NULL;
}

void __iomem *devm_ioremap_resource(struct device *dev, const struct resource *res)
{
	if (!res)
		return ERR_PTR(-EINVAL);
	return (void __iomem *)(uintptr_t)res->start;
}

void __iomem *devm_platform_get_and_ioremap_resource(struct platform_device *pdev, unsigned int index, struct resource **res)
{
	struct resource *r = platform_get_resource(pdev, IORESOURCE_MEM, index);
	if (res)
		*res = r;
	return devm_ioremap_resource(&pdev->dev, r);
}

void __iomem *devm_platform_ioremap_resource(struct platform_device *pdev, unsigned int index)
{
	return devm_platform_get_and_ioremap_resource(pdev, index, NULL);
}

int platform_get_irq(struct platform_device *pdev, unsigned int num)
{
	struct resource *r = platform_get_resource(pdev, IORESOURCE_IRQ, num);
	if (!r) {
		dev_err(&pdev->dev, "IRQ index %u not found\n", num);
		return -ENXIO;
	}
	return (int)r->start;
}

int platform_irq_count(struct platform_device *pdev)
{
	int n = 0;
	while (platform_get_resource(pdev, IORESOURCE_IRQ, n))
		n++;
	return n;
}

struct platform_device *of_find_device_by_node(struct device_node *np)
{
	return np && np->dev == &soc_iommu_pdev->dev ? soc_iommu_pdev : NULL;
}

void put_device(struct device *dev) { (void)dev; }
int dma_set_mask_and_coherent(struct device *dev, u64 mask)
{
	dev->coherent_dma_mask = mask;
	return 0;
}
const void *of_device_get_match_data(const struct device *dev)
{
	const struct of_device_id *m = dev->driver ? dev->driver->of_match_table : NULL;
	return m ? m[0].data : NULL;
}
bool of_property_read_bool(const struct device_node *np, const char *name) { return false; }
int of_property_read_u32(const struct device_node *np, const char *name, u32 *out) { return -EINVAL; }
bool device_property_read_bool(const struct device *dev, const char *name) { return false; }
int of_count_phandle_with_args(const struct device_node *np, const char *list, const char *cells) { return 1; }

/* ---- clocks and resets: no model behind them here, so they succeed ---- */
static struct clk *soc_clk(void) { static int c; return (struct clk *)&c; }
struct clk *devm_clk_get(struct device *dev, const char *id) { return soc_clk(); }
struct clk *devm_clk_get_optional(struct device *dev, const char *id) { return soc_clk(); }
struct clk *devm_clk_get_enabled(struct device *dev, const char *id) { return soc_clk(); }
int clk_prepare_enable(struct clk *clk) { return soc_clk_gate(1); }
void clk_disable_unprepare(struct clk *clk) { soc_clk_gate(0); }
int clk_enable(struct clk *clk) { return soc_clk_gate(1); }
void clk_disable(struct clk *clk) { soc_clk_gate(0); }
int clk_prepare(struct clk *clk) { return 0; }
void clk_unprepare(struct clk *clk) {}
unsigned long clk_get_rate(struct clk *clk) { return 0; }
int devm_clk_bulk_get(struct device *dev, int num, struct clk_bulk_data *clks)
{
	for (int i = 0; i < num; i++)
		clks[i].clk = soc_clk();
	return 0;
}
int devm_clk_bulk_get_all(struct device *dev, struct clk_bulk_data **clks) { *clks = NULL; return 0; }
int clk_bulk_prepare(int num, const struct clk_bulk_data *clks) { return 0; }
void clk_bulk_unprepare(int num, const struct clk_bulk_data *clks) {}
int clk_bulk_enable(int num, const struct clk_bulk_data *clks) { return soc_clk_gate(1); }
void clk_bulk_disable(int num, const struct clk_bulk_data *clks) { soc_clk_gate(0); }
int clk_bulk_prepare_enable(int num, const struct clk_bulk_data *clks) { return soc_clk_gate(1); }
void clk_bulk_disable_unprepare(int num, const struct clk_bulk_data *clks) { soc_clk_gate(0); }
struct reset_control *devm_reset_control_get(struct device *dev, const char *id) { static int r; return (struct reset_control *)&r; }
int reset_control_assert(struct reset_control *rstc) { return soc_reset_line(1); }
int reset_control_deassert(struct reset_control *rstc) { return soc_reset_line(0); }
int reset_control_reset(struct reset_control *rstc) { return 0; }

/* ---- interrupts: the handler the engine runs when the IOMMU's line fires ---- */
static irq_handler_t soc_irq_handler;
static irq_handler_t soc_irq_thread;
static void *soc_irq_dev;
static int soc_irq_num = -1;

int devm_request_threaded_irq(struct device *dev, unsigned int irq, irq_handler_t handler, irq_handler_t thread_fn, unsigned long flags, const char *name, void *dev_id)
{
	soc_irq_handler = handler;
	soc_irq_thread = thread_fn;
	soc_irq_dev = dev_id;
	soc_irq_num = irq;
	return 0;
}
int devm_request_irq(struct device *dev, unsigned int irq, irq_handler_t handler, unsigned long flags, const char *name, void *dev_id)
{
	return devm_request_threaded_irq(dev, irq, handler, NULL, flags, name, dev_id);
}
int request_irq(unsigned int irq, irq_handler_t handler, unsigned long flags, const char *name, void *dev_id)
{
	return devm_request_threaded_irq(NULL, irq, handler, NULL, flags, name, dev_id);
}
void free_irq(unsigned int irq, void *dev_id) { soc_irq_handler = NULL; soc_irq_thread = NULL; }
void devm_free_irq(struct device *dev, unsigned int irq, void *dev_id) { free_irq(irq, dev_id); }
void enable_irq(unsigned int irq) {}
void disable_irq(unsigned int irq) {}

SOC_EXPORT(__soc_irq) int soc_irq(void)
{
	if (!soc_irq_handler)
		return 0;
	irqreturn_t r = soc_irq_handler(soc_irq_num, soc_irq_dev);
	if (r == IRQ_WAKE_THREAD && soc_irq_thread)
		r = soc_irq_thread(soc_irq_num, soc_irq_dev);
	return r == IRQ_HANDLED;
}

/* ---- memory: DMA-visible pages, kmem caches, coherent buffers come from the engine ---- */
struct kmem_cache {
	int id;
	unsigned int size;
};

struct kmem_cache *kmem_cache_create(const char *name, unsigned int size, unsigned int align, slab_flags_t flags, void (*ctor)(void *))
{
	struct kmem_cache *c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return NULL;
	c->id = soc_cache_create(name, size);
	c->size = size;
	return c;
}
void kmem_cache_destroy(struct kmem_cache *c) { kfree(c); }
void *kmem_cache_alloc(struct kmem_cache *c, gfp_t gfp) { return (void *)soc_cache_alloc(c->id, (gfp & __GFP_ZERO) != 0); }
void *kmem_cache_zalloc(struct kmem_cache *c, gfp_t gfp) { return (void *)soc_cache_alloc(c->id, 1); }
void kmem_cache_free(struct kmem_cache *c, void *p) { if (p) soc_cache_free(c->id, (u32)p); }
unsigned long __get_free_pages(gfp_t gfp, unsigned int order) { return soc_page_alloc(-1, order, (gfp & __GFP_ZERO) != 0); }
unsigned long get_zeroed_page(gfp_t gfp) { return soc_page_alloc(-1, 0, 1); }
void free_pages(unsigned long addr, unsigned int order) { if (addr) soc_page_free(addr, order); }
/* struct page * is the page's kernel virtual address here. */
struct page *alloc_pages(gfp_t gfp, unsigned int order) { return (struct page *)soc_page_alloc(-1, order, (gfp & __GFP_ZERO) != 0); }
void __free_pages(struct page *page, unsigned int order) { free_pages((unsigned long)page, order); }
void *page_address(const struct page *page) { return (void *)page; }

dma_addr_t dma_map_single(struct device *dev, void *ptr, size_t size, enum dma_data_direction dir)
{
	dma_addr_t pa = virt_to_phys(ptr);
	if (dir != DMA_FROM_DEVICE)
		soc_dma_sync((u32)pa, (u32)(pa >> 32), size, DMA_TO_DEVICE);
	return pa;
}
void dma_unmap_single(struct device *dev, dma_addr_t addr, size_t size, enum dma_data_direction dir)
{
	if (dir != DMA_TO_DEVICE)
		soc_dma_sync((u32)addr, (u32)(addr >> 32), size, DMA_FROM_DEVICE);
}
void dma_sync_single_for_device(struct device *dev, dma_addr_t addr, size_t size, enum dma_data_direction dir)
{
	soc_dma_sync((u32)addr, (u32)(addr >> 32), size, dir == DMA_FROM_DEVICE ? DMA_FROM_DEVICE : DMA_TO_DEVICE);
}
void dma_sync_single_for_cpu(struct device *dev, dma_addr_t addr, size_t size, enum dma_data_direction dir)
{
	if (dir != DMA_TO_DEVICE)
		soc_dma_sync((u32)addr, (u32)(addr >> 32), size, DMA_FROM_DEVICE);
}
void *dma_alloc_coherent(struct device *dev, size_t size, dma_addr_t *handle, gfp_t gfp)
{
	u32 va = soc_page_alloc(-1, get_order(size), 1);
	if (!va)
		return NULL;
	*handle = virt_to_phys((void *)va);
	return (void *)va;
}
void dma_free_coherent(struct device *dev, size_t size, void *cpu, dma_addr_t handle)
{
	free_pages((unsigned long)cpu, get_order(size));
}

/* ---- device links ---- */
struct device_link {
	struct device *consumer;
	struct device *supplier;
};
struct device_link *device_link_add(struct device *consumer, struct device *supplier, u32 flags)
{
	if (soc_device_link(consumer->soc_id, supplier->soc_id, flags, __SOC_SITE) < 0)
		return NULL;
	struct device_link *l = kzalloc(sizeof(*l), GFP_KERNEL);
	l->consumer = consumer;
	l->supplier = supplier;
	return l;
}
void device_link_del(struct device_link *link)
{
	if (!link)
		return;
	soc_device_link(link->consumer->soc_id, link->supplier->soc_id, 0xffffffffu, __SOC_SITE);
	kfree(link);
}
void device_link_remove(void *consumer, struct device *supplier)
{
	soc_device_link(((struct device *)consumer)->soc_id, supplier->soc_id, 0xffffffffu, __SOC_SITE);
}

/* ---- iommu core services the driver calls ---- */
struct iommu_group {
	int refs;
};
static const struct iommu_ops *soc_ops;
static struct iommu_device *soc_iommu_dev;

int iommu_device_register(struct iommu_device *iommu, const struct iommu_ops *ops, struct device *hwdev)
{
	iommu->ops = ops;
	iommu->dev = hwdev;
	soc_ops = ops;
	soc_iommu_dev = iommu;
	return 0;
}
void iommu_device_unregister(struct iommu_device *iommu) { soc_ops = NULL; }
int iommu_device_sysfs_add(struct iommu_device *iommu, struct device *parent, const void *groups, const char *fmt, ...) { return 0; }
void iommu_device_sysfs_remove(struct iommu_device *iommu) {}
struct iommu_group *iommu_group_alloc(void)
{
	struct iommu_group *g = kzalloc(sizeof(*g), GFP_KERNEL);
	if (!g)
		return ERR_PTR(-ENOMEM);
	g->refs = 1;
	return g;
}
struct iommu_group *iommu_group_ref_get(struct iommu_group *g)
{
	g->refs++;
	return g;
}
void iommu_group_put(struct iommu_group *g)
{
	if (g && --g->refs == 0)
		kfree(g);
}
struct iommu_group *generic_device_group(struct device *dev) { return iommu_group_alloc(); }
struct iommu_group *generic_single_device_group(struct device *dev) { return iommu_group_alloc(); }
struct iommu_domain *iommu_get_domain_for_dev(struct device *dev) { return NULL; }

int report_iommu_fault(struct iommu_domain *domain, struct device *dev, unsigned long iova, int flags)
{
	return soc_report_fault(domain ? domain->soc_id : -1, dev ? dev->soc_id : -1, iova, flags);
}

int platform_driver_register(struct platform_driver *drv) { return 0; }
void platform_driver_unregister(struct platform_driver *drv) {}

/* ---- entry points the engine calls (each on its own fiber) ---- */
extern struct platform_driver *const __soc_platform_driver;
extern int (*const __soc_platform_probe)(struct platform_device *) __attribute__((weak));

SOC_EXPORT(__soc_probe) int soc_probe(void)
{
	struct platform_driver *drv = __soc_platform_driver;
	soc_iommu_pdev->dev.driver = &drv->driver;
	int (*probe)(struct platform_device *) = drv->probe;
	if (&__soc_platform_probe && __soc_platform_probe)
		probe = __soc_platform_probe;
	if (!probe)
		return -ENODEV;
	return probe(soc_iommu_pdev);
}

/* What the engine needs to know of the registered ops (bits: identity, blocked, per-device groups). */
SOC_EXPORT(__soc_ops_info) u32 soc_ops_info(int what)
{
	if (!soc_ops)
		return 0;
	switch (what) {
	case 0: return (u32)soc_ops->pgsize_bitmap;
	case 1: return (soc_ops->identity_domain ? 1 : 0) | (soc_ops->blocked_domain ? 2 : 0);
	case 2: return (u32)soc_ops->def_domain_type;
	default: return 0;
	}
}

/* of_xlate (the master's `iommus` specifier) and probe_device; then its group. */
SOC_EXPORT(__soc_probe_device) int soc_probe_device(struct device *dev, int master_id)
{
	if (!soc_ops)
		return -ENODEV;
	iommu_fwspec_init(dev, soc_iommu_pdev->dev.fwnode);
	if (soc_ops->of_xlate) {
		struct of_phandle_args args = { .np = soc_iommu_pdev->dev.of_node, .args_count = 1, .args = { (u32)master_id } };
		int r = soc_ops->of_xlate(dev, &args);
		if (r)
			return r;
	}
	struct iommu_device *idev = soc_ops->probe_device(dev);
	if (IS_ERR(idev))
		return (int)PTR_ERR(idev);
	soc_dev_iommu(dev)->iommu_dev = idev;
	if (soc_ops->device_group && !dev->iommu_group) {
		struct iommu_group *g = soc_ops->device_group(dev);
		if (IS_ERR(g))
			return (int)PTR_ERR(g);
		dev->iommu_group = g;
	}
	return 0;
}

SOC_EXPORT(__soc_release_device) void soc_release_device(struct device *dev)
{
	if (soc_ops && soc_ops->release_device)
		soc_ops->release_device(dev);
}

/* A paging domain for dev (domain_alloc_paging, or the older domain_alloc(type)); NULL on failure. */
SOC_EXPORT(__soc_domain_alloc) struct iommu_domain *soc_domain_alloc(unsigned type, struct device *dev, int soc_id)
{
	struct iommu_domain *d = NULL;
	if (soc_ops->domain_alloc_paging)
		d = soc_ops->domain_alloc_paging(dev);
	else if (soc_ops->domain_alloc)
		d = soc_ops->domain_alloc(type);
	if (IS_ERR_OR_NULL(d))
		return NULL;
	d->type = type;
	if (!d->ops)
		d->ops = soc_ops->default_domain_ops;
	if (!d->pgsize_bitmap)
		d->pgsize_bitmap = soc_ops->pgsize_bitmap;
	d->soc_id = soc_id;
	return d;
}

/* The static identity or blocked domain (which: 1 identity, 2 blocked). */
SOC_EXPORT(__soc_static_domain) struct iommu_domain *soc_static_domain(int which, int soc_id)
{
	struct iommu_domain *d = which == 1 ? soc_ops->identity_domain : soc_ops->blocked_domain;
	if (d)
		d->soc_id = soc_id;
	return d;
}

SOC_EXPORT(__soc_domain_info) u32 soc_domain_info(struct iommu_domain *d, int what)
{
	switch (what) {
	case 0: return (u32)d->pgsize_bitmap;
	case 1: return (u32)d->geometry.aperture_start;
	case 2: return (u32)(d->geometry.aperture_end > 0xffffffffULL ? 0xffffffffu : d->geometry.aperture_end);
	case 3: return d->geometry.force_aperture;
	default: return 0;
	}
}

SOC_EXPORT(__soc_domain_free) void soc_domain_free(struct iommu_domain *d) { d->ops->free(d); }
SOC_EXPORT(__soc_attach) int soc_attach(struct iommu_domain *d, struct device *dev) { return d->ops->attach_dev(d, dev); }

SOC_EXPORT(__soc_map) int soc_map(struct iommu_domain *d, unsigned long iova, u32 pa_lo, u32 pa_hi, size_t pgsize, size_t pgcount, int prot, size_t *mapped)
{
	phys_addr_t pa = ((u64)pa_hi << 32) | pa_lo;
	if (d->ops->map_pages)
		return d->ops->map_pages(d, iova, pa, pgsize, pgcount, prot, GFP_KERNEL, mapped);
	/* Before map_pages the core called map once per page. */
	for (size_t i = 0; i < pgcount; i++) {
		int r = d->ops->map(d, iova + i * pgsize, pa + i * pgsize, pgsize, prot, GFP_KERNEL);
		if (r)
			return r;
		*mapped += pgsize;
	}
	return 0;
}

SOC_EXPORT(__soc_unmap) size_t soc_unmap(struct iommu_domain *d, unsigned long iova, size_t pgsize, size_t pgcount)
{
	struct iommu_iotlb_gather g;
	iommu_iotlb_gather_init(&g);
	if (d->ops->unmap_pages)
		return d->ops->unmap_pages(d, iova, pgsize, pgcount, &g);
	size_t done = 0;
	for (size_t i = 0; i < pgcount; i++) {
		size_t n = d->ops->unmap(d, iova + done, pgsize, &g);
		if (!n)
			break;
		done += n;
	}
	return done;
}

SOC_EXPORT(__soc_iova_to_phys) u64 soc_iova_to_phys(struct iommu_domain *d, u32 iova) { return d->ops->iova_to_phys(d, iova); }

/* Ops the domain has (bit 0 iotlb_sync_map, 1 iotlb_sync, 2 flush_iotlb_all). */
SOC_EXPORT(__soc_domain_ops) u32 soc_domain_ops(struct iommu_domain *d)
{
	return (d->ops->iotlb_sync_map ? 1 : 0) | (d->ops->iotlb_sync ? 2 : 0) | (d->ops->flush_iotlb_all ? 4 : 0);
}

/* iotlb_sync_map returned void before v6.8 and int since; the engine calls the table entry itself. */
SOC_EXPORT(__soc_sync_map_fn) u32 soc_sync_map_fn(struct iommu_domain *d) { return (u32)(uintptr_t)d->ops->iotlb_sync_map; }

SOC_EXPORT(__soc_iotlb_sync) void soc_iotlb_sync(struct iommu_domain *d, u32 start, u32 end, u32 pgsize)
{
	struct iommu_iotlb_gather g;
	iommu_iotlb_gather_init(&g);
	if (pgsize) {
		g.start = start;
		g.end = end;
		g.pgsize = pgsize;
	}
	d->ops->iotlb_sync(d, &g);
}

SOC_EXPORT(__soc_flush_iotlb_all) void soc_flush_iotlb_all(struct iommu_domain *d) { d->ops->flush_iotlb_all(d); }

/* Runtime PM callbacks of the IOMMU's driver (which: 0 suspend, 1 resume); 0 if it has none. */
SOC_EXPORT(__soc_pm_callback) int soc_pm_callback(int which)
{
	const struct dev_pm_ops *pm = __soc_platform_driver->driver.pm;
	if (!pm)
		return 0;
	int (*fn)(struct device *) = which ? pm->runtime_resume : pm->runtime_suspend;
	return fn ? fn(&soc_iommu_pdev->dev) : 0;
}

SOC_EXPORT(__soc_has_pm_callbacks) int soc_has_pm_callbacks(void)
{
	const struct dev_pm_ops *pm = __soc_platform_driver->driver.pm;
	return pm && (pm->runtime_resume || pm->runtime_suspend);
}
