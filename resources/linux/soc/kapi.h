/*
 * SoC Console's Linux kernel API subset for IOMMU drivers compiled to wasm32.
 *
 * Written for SoC Console from the documented signatures of the Linux v6.8 kernel API (the
 * iommu_ops / iommu_domain_ops layout of v6.8, older members that mainline drivers still used
 * kept beside the new ones: domain_alloc, map/unmap, detach_dev). This is not a copy of the
 * kernel's headers: only the declarations an IOMMU driver needs, each implemented by
 * resources/linux/lib/soc-kernel.c or by the engine's runtime (src/sim/kernel/cdriver).
 *
 * What reaches the simulated hardware: readl/writel (MMIO), loads and stores to memory from the
 * page allocator, kmem caches and dma_alloc_* (through the CPU cache model), atomics on that
 * memory, spinlocks and mutexes, udelay. Each is a preemption point of the interleaving explorer.
 */
#ifndef _SOC_KAPI_H
#define _SOC_KAPI_H

#define SOC_KAPI_KERNEL_VERSION "6.8"
#define LINUX_VERSION_CODE ((6 << 16) | (8 << 8))
#define KERNEL_VERSION(a, b, c) (((a) << 16) + ((b) << 8) + ((c) > 255 ? 255 : (c)))

/* ---- compiler.h, types.h ---- */
#define __iomem
#define __user
#define __rcu
#define __force
#define __must_check __attribute__((warn_unused_result))
#define __maybe_unused __attribute__((unused))
#define __always_unused __attribute__((unused))
#define __always_inline inline __attribute__((always_inline))
#define noinline __attribute__((noinline))
#define __packed __attribute__((packed))
#define __aligned(x) __attribute__((aligned(x)))
#define __init
#define __exit
#define __initdata
#define __ro_after_init
#define __read_mostly
#define __weak __attribute__((weak))
#define __printf(a, b) __attribute__((format(printf, a, b)))
#define fallthrough __attribute__((fallthrough))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define barrier() __asm__ __volatile__("" ::: "memory")
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define offsetof(t, m) __builtin_offsetof(t, m)
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define __stringify_1(x) #x
#define __stringify(x) __stringify_1(x)
#define BUILD_BUG_ON(c) _Static_assert(!(c), "BUILD_BUG_ON(" #c ")")
#define static_assert _Static_assert
#define IS_ENABLED(option) __soc_is_defined(option)
#define __soc_is_defined(x) __soc_is_defined2(__soc_arg_placeholder_##x)
#define __soc_arg_placeholder_1 0,
#define __soc_is_defined2(v) __soc_take_second(v 1, 0)
#define __soc_take_second(a, b, ...) b

#define NULL ((void *)0)
typedef _Bool bool;
#define true 1
#define false 0
typedef signed char s8;
typedef unsigned char u8;
typedef short s16;
typedef unsigned short u16;
typedef int s32;
typedef unsigned int u32;
typedef long long s64;
typedef unsigned long long u64;
typedef u8 __u8;
typedef u16 __u16;
typedef u32 __u32;
typedef u64 __u64;
typedef u16 __le16;
typedef u32 __le32;
typedef u64 __le64;
typedef unsigned long size_t;
typedef long ssize_t;
typedef long ptrdiff_t;
typedef unsigned long uintptr_t;
typedef u64 phys_addr_t;
typedef u64 dma_addr_t;
typedef phys_addr_t resource_size_t;
typedef unsigned int gfp_t;
typedef unsigned int slab_flags_t;
typedef int irqreturn_t;
typedef s64 ktime_t;
typedef __builtin_va_list va_list;
#define va_start(v, l) __builtin_va_start(v, l)
#define va_end(v) __builtin_va_end(v)
#define va_arg(v, t) __builtin_va_arg(v, t)
#define U32_MAX 0xffffffffU
#define U64_MAX 0xffffffffffffffffULL
#define INT_MAX 0x7fffffff
#define UINT_MAX 0xffffffffU
#define ULONG_MAX 0xffffffffUL
#define BITS_PER_LONG 32

/* Where a call comes from: the bridge names the C function and file:line of MMIO, locks, atomics, WARN. */
struct soc_site {
	const char *file;
	const char *func;
	int line;
};
#define __SOC_SITE ({ static const struct soc_site __soc_s = { __FILE__, __func__, __LINE__ }; &__soc_s; })

/*
 * A historic variant switchable at run time (kernel.driver(name).setVariant): define a variant
 * macro as soc_variant("name", default) in the config's "defines" instead of 0 or 1.
 */
int soc_variant(const char *name, int dflt);

/* ---- bits.h, bitfield.h, log2.h, sizes.h, kernel.h ---- */
#define BIT(n) (1UL << (n))
#define BIT_ULL(n) (1ULL << (n))
#define GENMASK(h, l) (((~0UL) - (1UL << (l)) + 1) & (~0UL >> (BITS_PER_LONG - 1 - (h))))
#define GENMASK_ULL(h, l) (((~0ULL) - (1ULL << (l)) + 1) & (~0ULL >> (63 - (h))))
#define __bf_shf(x) (__builtin_ffsll(x) - 1)
#define FIELD_PREP(mask, val) (((__typeof__(mask))(val) << __bf_shf(mask)) & (mask))
#define FIELD_GET(mask, reg) ((__typeof__(mask))(((reg) & (mask)) >> __bf_shf(mask)))
#define FIELD_FIT(mask, val) (!((((__typeof__(mask))(val)) << __bf_shf(mask)) & ~(mask)))
#define FIELD_MAX(mask) ((__typeof__(mask))((mask) >> __bf_shf(mask)))
#define lower_32_bits(n) ((u32)((n) & 0xffffffff))
#define upper_32_bits(n) ((u32)(((u64)(n)) >> 32))
static inline int fls(unsigned int x) { return x ? 32 - __builtin_clz(x) : 0; }
static inline int fls64(u64 x) { return x ? 64 - __builtin_clzll(x) : 0; }
static inline unsigned long __ffs(unsigned long x) { return __builtin_ctzl(x); }
#define ffs(x) __builtin_ffs(x)
#define ilog2(n) ((n) ? (int)(63 - __builtin_clzll((u64)(n))) : -1)
#define is_power_of_2(n) ((n) != 0 && (((n) & ((n) - 1)) == 0))
#define roundup_pow_of_two(n) ((n) <= 1 ? 1UL : 1UL << fls((unsigned int)((n) - 1)))
#define SZ_1K 0x00000400
#define SZ_2K 0x00000800
#define SZ_4K 0x00001000
#define SZ_8K 0x00002000
#define SZ_16K 0x00004000
#define SZ_32K 0x00008000
#define SZ_64K 0x00010000
#define SZ_1M 0x00100000
#define SZ_2M 0x00200000
#define SZ_4M 0x00400000
#define SZ_16M 0x01000000
#define SZ_1G 0x40000000
#define min(a, b) ({ __typeof__(a) __a = (a); __typeof__(b) __b = (b); __a < __b ? __a : __b; })
#define max(a, b) ({ __typeof__(a) __a = (a); __typeof__(b) __b = (b); __a > __b ? __a : __b; })
#define min_t(t, a, b) min((t)(a), (t)(b))
#define max_t(t, a, b) max((t)(a), (t)(b))
#define clamp(v, lo, hi) min(max(v, lo), hi)
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define ALIGN(x, a) (((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define IS_ALIGNED(x, a) (((x) & ((__typeof__(x))(a) - 1)) == 0)
#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#define PAGE_MASK (~(PAGE_SIZE - 1))
#define DMA_BIT_MASK(n) (((n) == 64) ? ~0ULL : ((1ULL << (n)) - 1))
static inline int get_order(unsigned long size)
{
	int order = 0;
	size = (size - 1) >> PAGE_SHIFT;
	while (size) {
		order++;
		size >>= 1;
	}
	return order;
}

/* ---- errno.h, err.h ---- */
#define EPERM 1
#define ENOENT 2
#define EINTR 4
#define EIO 5
#define ENXIO 6
#define E2BIG 7
#define EAGAIN 11
#define ENOMEM 12
#define EFAULT 14
#define EBUSY 16
#define EEXIST 17
#define ENODEV 19
#define EINVAL 22
#define ENOSPC 28
#define ERANGE 34
#define ENOSYS 38
#define ETIMEDOUT 110
#define EPROBE_DEFER 517
#define EOPNOTSUPP 95
#define MAX_ERRNO 4095
#define IS_ERR_VALUE(x) unlikely((unsigned long)(void *)(x) >= (unsigned long)-MAX_ERRNO)
static inline void *ERR_PTR(long error) { return (void *)error; }
static inline long PTR_ERR(const void *ptr) { return (long)ptr; }
static inline bool IS_ERR(const void *ptr) { return IS_ERR_VALUE((unsigned long)ptr); }
static inline bool IS_ERR_OR_NULL(const void *ptr) { return !ptr || IS_ERR(ptr); }
static inline void *ERR_CAST(const void *ptr) { return (void *)ptr; }
static inline int PTR_ERR_OR_ZERO(const void *ptr) { return IS_ERR(ptr) ? (int)PTR_ERR(ptr) : 0; }
#define dev_err_probe(dev, err, ...) ({ dev_err(dev, __VA_ARGS__); (err); })

/* ---- string.h: the kernel's own mapping to the compiler builtins ---- */
void *memset(void *s, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
char *strncpy(char *d, const char *s, size_t n);
#define memset(s, c, n) __builtin_memset(s, c, n)
#define memcpy(d, s, n) __builtin_memcpy(d, s, n)
#define memmove(d, s, n) __builtin_memmove(d, s, n)

/* ---- printk.h ---- */
#define KERN_SOH "\001"
#define KERN_EMERG KERN_SOH "0"
#define KERN_ALERT KERN_SOH "1"
#define KERN_CRIT KERN_SOH "2"
#define KERN_ERR KERN_SOH "3"
#define KERN_WARNING KERN_SOH "4"
#define KERN_NOTICE KERN_SOH "5"
#define KERN_INFO KERN_SOH "6"
#define KERN_DEBUG KERN_SOH "7"
__printf(1, 2) int printk(const char *fmt, ...);
__printf(3, 4) int snprintf(char *buf, size_t size, const char *fmt, ...);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list args);
#define pr_fmt(fmt) fmt
#define pr_err(fmt, ...) printk(KERN_ERR pr_fmt(fmt), ##__VA_ARGS__)
#define pr_warn(fmt, ...) printk(KERN_WARNING pr_fmt(fmt), ##__VA_ARGS__)
#define pr_info(fmt, ...) printk(KERN_INFO pr_fmt(fmt), ##__VA_ARGS__)
#define pr_notice(fmt, ...) printk(KERN_NOTICE pr_fmt(fmt), ##__VA_ARGS__)
#define pr_debug(fmt, ...) printk(KERN_DEBUG pr_fmt(fmt), ##__VA_ARGS__)
#define pr_err_ratelimited pr_err
#define pr_warn_once pr_warn

/* ---- bug.h ---- */
void __soc_warn(const struct soc_site *site, const char *cond);
__attribute__((noreturn)) void __soc_bug(const struct soc_site *site, const char *cond);
#define WARN_ON(c) ({ int __c = !!(c); if (unlikely(__c)) __soc_warn(__SOC_SITE, #c); unlikely(__c); })
#define WARN_ON_ONCE(c) WARN_ON(c)
#define WARN(c, fmt, ...) ({ int __c = !!(c); if (unlikely(__c)) { printk(KERN_WARNING fmt, ##__VA_ARGS__); __soc_warn(__SOC_SITE, #c); } unlikely(__c); })
#define WARN_ONCE WARN
#define BUG() __soc_bug(__SOC_SITE, "BUG()")
#define BUG_ON(c) do { if (unlikely(c)) __soc_bug(__SOC_SITE, #c); } while (0)

/* ---- io.h, iopoll.h, delay.h, jiffies.h, ktime.h ---- */
u32 __soc_readl(const volatile void __iomem *addr, const struct soc_site *site);
void __soc_writel(u32 value, volatile void __iomem *addr, const struct soc_site *site);
#define readl(a) __soc_readl((a), __SOC_SITE)
#define writel(v, a) __soc_writel((v), (a), __SOC_SITE)
#define readl_relaxed readl
#define writel_relaxed writel
void __soc_udelay(unsigned long us, const struct soc_site *site);
#define udelay(us) __soc_udelay((us), __SOC_SITE)
#define ndelay(ns) __soc_udelay(((ns) + 999) / 1000, __SOC_SITE)
#define mdelay(ms) __soc_udelay((ms) * 1000UL, __SOC_SITE)
#define usleep_range(a, b) __soc_udelay((a), __SOC_SITE)
#define msleep(ms) __soc_udelay((ms) * 1000UL, __SOC_SITE)
u64 __soc_ktime_ns(void);
static inline ktime_t ktime_get(void) { return (ktime_t)__soc_ktime_ns(); }
#define ktime_add_us(t, us) ((t) + (ktime_t)(us) * 1000)
#define ktime_compare(a, b) ((a) < (b) ? -1 : (a) > (b) ? 1 : 0)
#define ktime_after(a, b) ((a) > (b))
#define ktime_to_us(t) ((t) / 1000)
#define HZ 100
#define jiffies ((unsigned long)(__soc_ktime_ns() / 10000000ULL))
#define msecs_to_jiffies(ms) ((unsigned long)(((ms) + 9) / 10))
#define time_after(a, b) ((long)((b) - (a)) < 0)
/* read_poll_timeout: poll until cond or timeout_us of simulated time (one step per delay_us). */
#define read_poll_timeout(op, val, cond, delay_us, timeout_us, sleep_before_read, args...) ({ \
	u64 __soc_waited = 0; \
	int __soc_ret = 0; \
	if (sleep_before_read && (delay_us)) udelay(delay_us); \
	for (;;) { \
		(val) = op(args); \
		if (cond) break; \
		if ((timeout_us) && __soc_waited >= (u64)(timeout_us)) { \
			(val) = op(args); \
			__soc_ret = (cond) ? 0 : -ETIMEDOUT; \
			break; \
		} \
		udelay((delay_us) ? (delay_us) : 1); \
		__soc_waited += (delay_us) ? (delay_us) : 1; \
	} \
	__soc_ret; })
#define readx_poll_timeout(op, addr, val, cond, delay_us, timeout_us) read_poll_timeout(op, val, cond, delay_us, timeout_us, false, addr)
#define readx_poll_timeout_atomic readx_poll_timeout
#define read_poll_timeout_atomic read_poll_timeout
#define readl_poll_timeout(addr, val, cond, delay_us, timeout_us) readx_poll_timeout(readl, addr, val, cond, delay_us, timeout_us)
#define readl_poll_timeout_atomic readl_poll_timeout
#define readl_relaxed_poll_timeout readl_poll_timeout

/* ---- spinlock.h, mutex.h: a lock word the engine owns; taking it is a preemption point ---- */
typedef struct { volatile u32 owner; } spinlock_t;
typedef spinlock_t raw_spinlock_t;
struct mutex { volatile u32 owner; };
void __soc_lock(volatile u32 *word, const char *name, const struct soc_site *site);
void __soc_unlock(volatile u32 *word, const struct soc_site *site);
void __soc_assert_locked(volatile u32 *word, const struct soc_site *site);
#define DEFINE_SPINLOCK(x) spinlock_t x = { 0 }
#define DEFINE_MUTEX(x) struct mutex x = { 0 }
#define spin_lock_init(l) ((l)->owner = 0)
#define raw_spin_lock_init spin_lock_init
#define mutex_init(m) ((m)->owner = 0)
#define mutex_destroy(m) ((void)(m))
#define spin_lock(l) __soc_lock(&(l)->owner, #l, __SOC_SITE)
#define spin_unlock(l) __soc_unlock(&(l)->owner, __SOC_SITE)
#define spin_lock_irqsave(l, f) do { (f) = 0; __soc_lock(&(l)->owner, #l, __SOC_SITE); } while (0)
#define spin_unlock_irqrestore(l, f) do { (void)(f); __soc_unlock(&(l)->owner, __SOC_SITE); } while (0)
#define spin_lock_irq spin_lock
#define spin_unlock_irq spin_unlock
#define raw_spin_lock_irqsave spin_lock_irqsave
#define raw_spin_unlock_irqrestore spin_unlock_irqrestore
#define mutex_lock(m) __soc_lock(&(m)->owner, #m, __SOC_SITE)
#define mutex_unlock(m) __soc_unlock(&(m)->owner, __SOC_SITE)
#define assert_spin_locked(l) __soc_assert_locked(&(l)->owner, __SOC_SITE)
#define lockdep_assert_held(l) __soc_assert_locked(&(l)->owner, __SOC_SITE)
#define spin_is_locked(l) ((l)->owner != 0)

/* ---- atomics: on DMA-visible memory they go through the CPU cache model ---- */
u32 __soc_cmpxchg32(volatile void *p, u32 old, u32 new_, const struct soc_site *site);
u64 __soc_cmpxchg64(volatile void *p, u64 old, u64 new_, const struct soc_site *site);
u32 __soc_xchg32(volatile void *p, u32 v, const struct soc_site *site);
u64 __soc_xchg64(volatile void *p, u64 v, const struct soc_site *site);
#define cmpxchg(p, o, n) ((__typeof__(*(p)))(sizeof(*(p)) == 8 \
	? __soc_cmpxchg64((p), (u64)(o), (u64)(n), __SOC_SITE) \
	: __soc_cmpxchg32((p), (u32)(o), (u32)(n), __SOC_SITE)))
#define cmpxchg_relaxed cmpxchg
#define cmpxchg64 cmpxchg
#define xchg(p, v) ((__typeof__(*(p)))(sizeof(*(p)) == 8 \
	? __soc_xchg64((p), (u64)(v), __SOC_SITE) \
	: __soc_xchg32((p), (u32)(v), __SOC_SITE)))
#define xchg_relaxed xchg
#define smp_mb() barrier()
#define smp_wmb() barrier()
#define smp_rmb() barrier()
#define wmb() barrier()
#define rmb() barrier()
#define mb() barrier()
#define dma_wmb() barrier()
typedef struct { int counter; } atomic_t;
typedef struct { s64 counter; } atomic64_t;
#define ATOMIC_INIT(i) { (i) }
static inline int atomic_read(const atomic_t *v) { return READ_ONCE(v->counter); }
static inline void atomic_set(atomic_t *v, int i) { WRITE_ONCE(v->counter, i); }
static inline int atomic_add_return(int i, atomic_t *v) { return (int)__soc_xchg32(&v->counter, v->counter + i, __SOC_SITE) + i; }
#define atomic_inc(v) ((void)atomic_add_return(1, v))
#define atomic_dec(v) ((void)atomic_add_return(-1, v))
#define atomic_inc_return(v) atomic_add_return(1, v)
#define atomic_dec_return(v) atomic_add_return(-1, v)
#define atomic_dec_and_test(v) (atomic_add_return(-1, v) == 0)
#define atomic_cmpxchg(v, o, n) ((int)__soc_cmpxchg32(&(v)->counter, (u32)(o), (u32)(n), __SOC_SITE))
typedef struct { atomic_t refs; } refcount_t;
#define REFCOUNT_INIT(n) { .refs = ATOMIC_INIT(n) }
static inline void refcount_set(refcount_t *r, int n) { atomic_set(&r->refs, n); }
static inline unsigned int refcount_read(const refcount_t *r) { return (unsigned int)atomic_read(&r->refs); }
#define refcount_inc(r) do { if (atomic_inc_return(&(r)->refs) <= 1) __soc_warn(__SOC_SITE, "refcount_t: addition on 0; use-after-free"); } while (0)
#define refcount_dec(r) do { if (atomic_dec_return(&(r)->refs) <= 0) __soc_warn(__SOC_SITE, "refcount_t: decrement hit 0; leaking memory"); } while (0)
#define refcount_dec_and_test(r) ({ int __n = atomic_dec_return(&(r)->refs); if (__n < 0) __soc_warn(__SOC_SITE, "refcount_t: underflow; use-after-free"); __n == 0; })
#define refcount_inc_not_zero(r) ({ int __o = atomic_read(&(r)->refs); __o ? (refcount_inc(r), 1) : 0; })

/* ---- list.h ---- */
struct list_head { struct list_head *next, *prev; };
#define LIST_HEAD_INIT(name) { &(name), &(name) }
#define LIST_HEAD(name) struct list_head name = LIST_HEAD_INIT(name)
static inline void INIT_LIST_HEAD(struct list_head *l) { l->next = l; l->prev = l; }
static inline void __list_add(struct list_head *n, struct list_head *prev, struct list_head *next)
{
	next->prev = n;
	n->next = next;
	n->prev = prev;
	prev->next = n;
}
static inline void list_add(struct list_head *n, struct list_head *head) { __list_add(n, head, head->next); }
static inline void list_add_tail(struct list_head *n, struct list_head *head) { __list_add(n, head->prev, head); }
static inline void list_del(struct list_head *e)
{
	e->next->prev = e->prev;
	e->prev->next = e->next;
	e->next = (struct list_head *)0x100;
	e->prev = (struct list_head *)0x122;
}
static inline void list_del_init(struct list_head *e)
{
	e->next->prev = e->prev;
	e->prev->next = e->next;
	INIT_LIST_HEAD(e);
}
static inline int list_empty(const struct list_head *h) { return h->next == h; }
#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_first_entry(ptr, type, member) list_entry((ptr)->next, type, member)
#define list_next_entry(pos, member) list_entry((pos)->member.next, __typeof__(*(pos)), member)
#define list_for_each(pos, head) for (pos = (head)->next; pos != (head); pos = pos->next)
#define list_for_each_entry(pos, head, member) \
	for (pos = list_first_entry(head, __typeof__(*pos), member); &pos->member != (head); pos = list_next_entry(pos, member))
#define list_for_each_entry_safe(pos, n, head, member) \
	for (pos = list_first_entry(head, __typeof__(*pos), member), n = list_next_entry(pos, member); \
	     &pos->member != (head); pos = n, n = list_next_entry(n, member))

/* ---- gfp.h, mm.h, slab.h: driver-private memory lives in wasm memory; page and kmem-cache memory is DMA-visible ---- */
#define GFP_KERNEL 0x0cc0u
#define GFP_ATOMIC 0x0820u
#define GFP_NOWAIT 0x0800u
#define GFP_DMA32 0x0004u
#define GFP_DMA 0x0001u
#define __GFP_ZERO 0x0100u
#define __GFP_NOWARN 0x2000u
#define GFP_KERNEL_ACCOUNT GFP_KERNEL
#define SLAB_HWCACHE_ALIGN 0x00002000u
#define SLAB_CACHE_DMA 0x00004000u
#define SLAB_CACHE_DMA32 0x00008000u
#define SLAB_PANIC 0x00040000u
void *kmalloc(size_t size, gfp_t gfp);
void *kzalloc(size_t size, gfp_t gfp);
void *kcalloc(size_t n, size_t size, gfp_t gfp);
void *kmalloc_array(size_t n, size_t size, gfp_t gfp);
void kfree(const void *p);
char *kstrdup(const char *s, gfp_t gfp);
struct kmem_cache;
struct kmem_cache *kmem_cache_create(const char *name, unsigned int size, unsigned int align, slab_flags_t flags, void (*ctor)(void *));
void kmem_cache_destroy(struct kmem_cache *c);
void *kmem_cache_alloc(struct kmem_cache *c, gfp_t gfp);
void *kmem_cache_zalloc(struct kmem_cache *c, gfp_t gfp);
void kmem_cache_free(struct kmem_cache *c, void *p);
unsigned long __get_free_pages(gfp_t gfp, unsigned int order);
unsigned long get_zeroed_page(gfp_t gfp);
#define __get_free_page(gfp) __get_free_pages((gfp), 0)
void free_pages(unsigned long addr, unsigned int order);
#define free_page(addr) free_pages((addr), 0)
struct page;
struct page *alloc_pages(gfp_t gfp, unsigned int order);
void __free_pages(struct page *page, unsigned int order);
void *page_address(const struct page *page);
phys_addr_t __soc_virt_to_phys(const volatile void *p);
void *__soc_phys_to_virt(phys_addr_t pa);
#define virt_to_phys(p) __soc_virt_to_phys(p)
#define phys_to_virt(pa) __soc_phys_to_virt(pa)
#define __pa(p) virt_to_phys((void *)(p))
#define __va(pa) phys_to_virt(pa)
#define iommu_alloc_pages(gfp, order) ((void *)__get_free_pages((gfp) | __GFP_ZERO, (order)))
#define iommu_free_pages(p, order) free_pages((unsigned long)(p), (order))
#define iommu_alloc_page(gfp) iommu_alloc_pages((gfp), 0)
#define iommu_free_page(p) iommu_free_pages((p), 0)

/* ---- device.h, of.h, ioport.h, platform_device.h, property.h, module.h, init.h ---- */
struct device;
struct device_node { const char *name; struct device *dev; };
struct fwnode_handle { struct device_node *np; };
struct dev_pm_ops {
	int (*suspend)(struct device *dev);
	int (*resume)(struct device *dev);
	int (*runtime_suspend)(struct device *dev);
	int (*runtime_resume)(struct device *dev);
};
struct device_driver {
	const char *name;
	const struct of_device_id *of_match_table;
	const struct dev_pm_ops *pm;
	bool suppress_bind_attrs;
};
struct iommu_fwspec {
	struct fwnode_handle *iommu_fwnode;
	u32 flags;
	unsigned int num_ids;
	u32 ids[8];
};
struct dev_iommu {
	struct iommu_fwspec *fwspec;
	void *priv;
	struct iommu_device *iommu_dev;
};
struct device {
	const char *init_name;
	struct device *parent;
	struct device_node *of_node;
	struct fwnode_handle *fwnode;
	void *driver_data;
	struct dev_iommu *iommu;
	struct iommu_group *iommu_group;
	const struct device_driver *driver;
	u64 *dma_mask;
	u64 coherent_dma_mask;
	/* The engine's index of this device. */
	int soc_id;
};
struct resource {
	resource_size_t start;
	resource_size_t end;
	const char *name;
	unsigned long flags;
};
#define IORESOURCE_MEM 0x00000200
#define IORESOURCE_IRQ 0x00000400
static inline resource_size_t resource_size(const struct resource *r) { return r->end - r->start + 1; }
struct platform_device {
	const char *name;
	int id;
	struct device dev;
	u32 num_resources;
	struct resource *resource;
};
#define to_platform_device(d) container_of((d), struct platform_device, dev)
struct of_device_id {
	char name[32];
	char type[32];
	char compatible[128];
	const void *data;
};
struct platform_driver {
	int (*probe)(struct platform_device *);
	int (*remove)(struct platform_device *);
	void (*remove_new)(struct platform_device *);
	void (*shutdown)(struct platform_device *);
	struct device_driver driver;
};
#define MAX_PHANDLE_ARGS 16
struct of_phandle_args {
	struct device_node *np;
	int args_count;
	u32 args[MAX_PHANDLE_ARGS];
};
const char *dev_name(const struct device *dev);
static inline void *dev_get_drvdata(const struct device *dev) { return dev->driver_data; }
static inline void dev_set_drvdata(struct device *dev, void *data) { dev->driver_data = data; }
static inline void *platform_get_drvdata(const struct platform_device *pdev) { return pdev->dev.driver_data; }
static inline void platform_set_drvdata(struct platform_device *pdev, void *data) { pdev->dev.driver_data = data; }
struct resource *platform_get_resource(struct platform_device *pdev, unsigned int type, unsigned int num);
void __iomem *devm_ioremap_resource(struct device *dev, const struct resource *res);
void __iomem *devm_platform_ioremap_resource(struct platform_device *pdev, unsigned int index);
void __iomem *devm_platform_get_and_ioremap_resource(struct platform_device *pdev, unsigned int index, struct resource **res);
int platform_get_irq(struct platform_device *pdev, unsigned int num);
int platform_irq_count(struct platform_device *pdev);
struct platform_device *of_find_device_by_node(struct device_node *np);
const void *of_device_get_match_data(const struct device *dev);
#define device_get_match_data of_device_get_match_data
bool of_property_read_bool(const struct device_node *np, const char *name);
int of_property_read_u32(const struct device_node *np, const char *name, u32 *out);
int of_count_phandle_with_args(const struct device_node *np, const char *list, const char *cells);
bool device_property_read_bool(const struct device *dev, const char *name);
void *devm_kmalloc(struct device *dev, size_t size, gfp_t gfp);
void *devm_kzalloc(struct device *dev, size_t size, gfp_t gfp);
void *devm_kcalloc(struct device *dev, size_t n, size_t size, gfp_t gfp);
#define devm_kmalloc_array devm_kcalloc
void devm_kfree(struct device *dev, const void *p);
void put_device(struct device *dev);
int dma_set_mask_and_coherent(struct device *dev, u64 mask);
__printf(3, 4) void __soc_dev_printk(int level, const struct device *dev, const char *fmt, ...);
#define dev_err(dev, fmt, ...) __soc_dev_printk(3, dev, fmt, ##__VA_ARGS__)
#define dev_warn(dev, fmt, ...) __soc_dev_printk(4, dev, fmt, ##__VA_ARGS__)
#define dev_notice(dev, fmt, ...) __soc_dev_printk(5, dev, fmt, ##__VA_ARGS__)
#define dev_info(dev, fmt, ...) __soc_dev_printk(6, dev, fmt, ##__VA_ARGS__)
#define dev_dbg(dev, fmt, ...) __soc_dev_printk(7, dev, fmt, ##__VA_ARGS__)
#define dev_err_ratelimited dev_err
#define dev_warn_once dev_warn
#define dev_info_once dev_info
struct device_link;
#define DL_FLAG_STATELESS BIT(0)
#define DL_FLAG_AUTOREMOVE_CONSUMER BIT(1)
#define DL_FLAG_PM_RUNTIME BIT(2)
#define DL_FLAG_RPM_ACTIVE BIT(3)
#define DL_FLAG_AUTOREMOVE_SUPPLIER BIT(4)
struct device_link *device_link_add(struct device *consumer, struct device *supplier, u32 flags);
void device_link_del(struct device_link *link);
void device_link_remove(void *consumer, struct device *supplier);

#define MODULE_DEVICE_TABLE(type, name)
#define MODULE_DESCRIPTION(s)
#define MODULE_AUTHOR(s)
#define MODULE_LICENSE(s)
#define MODULE_ALIAS(s)
#define MODULE_SOFTDEP(s)
#define THIS_MODULE ((void *)0)
#define EXPORT_SYMBOL(s)
#define EXPORT_SYMBOL_GPL(s)
#define subsys_initcall(fn)
#define module_init(fn)
#define module_exit(fn)
#define device_initcall(fn)
/* The one platform driver of the file, found by the bridge. */
#define module_platform_driver(drv) struct platform_driver *const __soc_platform_driver = &(drv)
#define builtin_platform_driver(drv) module_platform_driver(drv)
#define builtin_platform_driver_probe(drv, probe_fn) \
	int (*const __soc_platform_probe)(struct platform_device *) = (probe_fn); \
	module_platform_driver(drv)
int platform_driver_register(struct platform_driver *drv);
void platform_driver_unregister(struct platform_driver *drv);

/* ---- clk.h, reset.h: the config's clocks and resets (no model behind them: they succeed) ---- */
struct clk;
struct clk_bulk_data { const char *id; struct clk *clk; };
struct reset_control;
struct clk *devm_clk_get(struct device *dev, const char *id);
struct clk *devm_clk_get_optional(struct device *dev, const char *id);
struct clk *devm_clk_get_enabled(struct device *dev, const char *id);
int clk_prepare_enable(struct clk *clk);
void clk_disable_unprepare(struct clk *clk);
int clk_enable(struct clk *clk);
void clk_disable(struct clk *clk);
int clk_prepare(struct clk *clk);
void clk_unprepare(struct clk *clk);
unsigned long clk_get_rate(struct clk *clk);
int devm_clk_bulk_get(struct device *dev, int num, struct clk_bulk_data *clks);
int devm_clk_bulk_get_all(struct device *dev, struct clk_bulk_data **clks);
int clk_bulk_prepare(int num, const struct clk_bulk_data *clks);
void clk_bulk_unprepare(int num, const struct clk_bulk_data *clks);
int clk_bulk_enable(int num, const struct clk_bulk_data *clks);
void clk_bulk_disable(int num, const struct clk_bulk_data *clks);
int clk_bulk_prepare_enable(int num, const struct clk_bulk_data *clks);
void clk_bulk_disable_unprepare(int num, const struct clk_bulk_data *clks);
struct reset_control *devm_reset_control_get(struct device *dev, const char *id);
#define devm_reset_control_get_exclusive devm_reset_control_get
#define devm_reset_control_get_optional devm_reset_control_get
#define devm_reset_control_get_optional_exclusive devm_reset_control_get
int reset_control_assert(struct reset_control *rstc);
int reset_control_deassert(struct reset_control *rstc);
int reset_control_reset(struct reset_control *rstc);

/* ---- interrupt.h ---- */
#define IRQ_NONE 0
#define IRQ_HANDLED 1
#define IRQ_WAKE_THREAD 2
#define IRQF_SHARED 0x00000080
#define IRQF_ONESHOT 0x00002000
typedef irqreturn_t (*irq_handler_t)(int irq, void *dev_id);
int devm_request_irq(struct device *dev, unsigned int irq, irq_handler_t handler, unsigned long flags, const char *name, void *dev_id);
int devm_request_threaded_irq(struct device *dev, unsigned int irq, irq_handler_t handler, irq_handler_t thread_fn, unsigned long flags, const char *name, void *dev_id);
int request_irq(unsigned int irq, irq_handler_t handler, unsigned long flags, const char *name, void *dev_id);
void free_irq(unsigned int irq, void *dev_id);
void devm_free_irq(struct device *dev, unsigned int irq, void *dev_id);
void enable_irq(unsigned int irq);
void disable_irq(unsigned int irq);

/* ---- pm.h, pm_runtime.h: the engine's runtime PM of the device ---- */
#define SET_RUNTIME_PM_OPS(s, r, i) .runtime_suspend = (s), .runtime_resume = (r),
#define SET_SYSTEM_SLEEP_PM_OPS(s, r) .suspend = (s), .resume = (r),
#define SYSTEM_SLEEP_PM_OPS(s, r) .suspend = (s), .resume = (r),
#define RUNTIME_PM_OPS(s, r, i) .runtime_suspend = (s), .runtime_resume = (r),
#define pm_ptr(p) (p)
#define pm_sleep_ptr(p) (p)
#define DEFINE_RUNTIME_DEV_PM_OPS(name, s, r, i) const struct dev_pm_ops name = { .runtime_suspend = (s), .runtime_resume = (r) }
int __soc_pm_runtime(int what, struct device *dev, const struct soc_site *site);
#define SOC_RPM_ENABLE 0
#define SOC_RPM_DISABLE 1
#define SOC_RPM_GET_SYNC 2
#define SOC_RPM_RESUME_AND_GET 3
#define SOC_RPM_PUT 4
#define SOC_RPM_PUT_SYNC 5
#define SOC_RPM_PUT_AUTOSUSPEND 6
#define SOC_RPM_GET_IF_IN_USE 7
#define SOC_RPM_USE_AUTOSUSPEND 8
#define SOC_RPM_MARK_LAST_BUSY 9
#define SOC_RPM_FORCE_SUSPEND 10
#define SOC_RPM_FORCE_RESUME 11
#define SOC_RPM_NOIDLE 12
#define pm_runtime_enable(d) ((void)__soc_pm_runtime(SOC_RPM_ENABLE, (d), __SOC_SITE))
#define devm_pm_runtime_enable(d) __soc_pm_runtime(SOC_RPM_ENABLE, (d), __SOC_SITE)
#define pm_runtime_disable(d) ((void)__soc_pm_runtime(SOC_RPM_DISABLE, (d), __SOC_SITE))
#define pm_runtime_get_sync(d) __soc_pm_runtime(SOC_RPM_GET_SYNC, (d), __SOC_SITE)
#define pm_runtime_resume_and_get(d) __soc_pm_runtime(SOC_RPM_RESUME_AND_GET, (d), __SOC_SITE)
#define pm_runtime_put(d) __soc_pm_runtime(SOC_RPM_PUT, (d), __SOC_SITE)
#define pm_runtime_put_sync(d) __soc_pm_runtime(SOC_RPM_PUT_SYNC, (d), __SOC_SITE)
#define pm_runtime_put_autosuspend(d) __soc_pm_runtime(SOC_RPM_PUT_AUTOSUSPEND, (d), __SOC_SITE)
#define pm_runtime_get_if_in_use(d) __soc_pm_runtime(SOC_RPM_GET_IF_IN_USE, (d), __SOC_SITE)
#define pm_runtime_use_autosuspend(d) ((void)__soc_pm_runtime(SOC_RPM_USE_AUTOSUSPEND, (d), __SOC_SITE))
#define pm_runtime_mark_last_busy(d) ((void)__soc_pm_runtime(SOC_RPM_MARK_LAST_BUSY, (d), __SOC_SITE))
#define pm_runtime_force_suspend(d) __soc_pm_runtime(SOC_RPM_FORCE_SUSPEND, (d), __SOC_SITE)
#define pm_runtime_force_resume(d) __soc_pm_runtime(SOC_RPM_FORCE_RESUME, (d), __SOC_SITE)
#define pm_runtime_put_noidle(d) ((void)__soc_pm_runtime(SOC_RPM_NOIDLE, (d), __SOC_SITE))
#define pm_runtime_set_autosuspend_delay(d, ms) ((void)(d), (void)(ms))
#define pm_runtime_set_active(d) 0
#define pm_runtime_irq_safe(d) ((void)(d))
static inline bool pm_runtime_enabled(struct device *dev) { (void)dev; return true; }

/* ---- dma-direction.h, dma-mapping.h: the IOMMU's own table memory is not behind an IOMMU ---- */
enum dma_data_direction { DMA_BIDIRECTIONAL = 0, DMA_TO_DEVICE = 1, DMA_FROM_DEVICE = 2, DMA_NONE = 3 };
#define DMA_MAPPING_ERROR (~(dma_addr_t)0)
dma_addr_t dma_map_single(struct device *dev, void *ptr, size_t size, enum dma_data_direction dir);
void dma_unmap_single(struct device *dev, dma_addr_t addr, size_t size, enum dma_data_direction dir);
void dma_sync_single_for_device(struct device *dev, dma_addr_t addr, size_t size, enum dma_data_direction dir);
void dma_sync_single_for_cpu(struct device *dev, dma_addr_t addr, size_t size, enum dma_data_direction dir);
static inline int dma_mapping_error(struct device *dev, dma_addr_t addr) { (void)dev; return addr == DMA_MAPPING_ERROR ? -ENOMEM : 0; }
void *dma_alloc_coherent(struct device *dev, size_t size, dma_addr_t *handle, gfp_t gfp);
void dma_free_coherent(struct device *dev, size_t size, void *cpu, dma_addr_t handle);
#define dmam_alloc_coherent dma_alloc_coherent

/* ---- iommu.h, of_iommu.h ---- */
#define IOMMU_READ (1 << 0)
#define IOMMU_WRITE (1 << 1)
#define IOMMU_CACHE (1 << 2)
#define IOMMU_NOEXEC (1 << 3)
#define IOMMU_MMIO (1 << 4)
#define IOMMU_PRIV (1 << 5)
#define IOMMU_FAULT_READ 0x0
#define IOMMU_FAULT_WRITE 0x1
#define __IOMMU_DOMAIN_PAGING (1U << 0)
#define __IOMMU_DOMAIN_DMA_API (1U << 1)
#define __IOMMU_DOMAIN_PT (1U << 2)
#define __IOMMU_DOMAIN_DMA_FQ (1U << 3)
#define IOMMU_DOMAIN_BLOCKED (0U)
#define IOMMU_DOMAIN_IDENTITY (__IOMMU_DOMAIN_PT)
#define IOMMU_DOMAIN_UNMANAGED (__IOMMU_DOMAIN_PAGING)
#define IOMMU_DOMAIN_DMA (__IOMMU_DOMAIN_PAGING | __IOMMU_DOMAIN_DMA_API)
#define IOMMU_DOMAIN_DMA_FQ (__IOMMU_DOMAIN_PAGING | __IOMMU_DOMAIN_DMA_API | __IOMMU_DOMAIN_DMA_FQ)
struct iommu_domain;
struct iommu_group;
struct iommu_iotlb_gather {
	unsigned long start;
	unsigned long end;
	size_t pgsize;
	struct list_head freelist;
	bool queued;
};
struct iommu_domain_geometry {
	dma_addr_t aperture_start;
	dma_addr_t aperture_end;
	bool force_aperture;
};
typedef int (*iommu_fault_handler_t)(struct iommu_domain *, struct device *, unsigned long, int, void *);
struct iommu_domain_ops {
	int (*attach_dev)(struct iommu_domain *domain, struct device *dev);
	int (*set_dev_pasid)(struct iommu_domain *domain, struct device *dev, int pasid);
	int (*map)(struct iommu_domain *domain, unsigned long iova, phys_addr_t paddr, size_t size, int prot, gfp_t gfp);
	int (*map_pages)(struct iommu_domain *domain, unsigned long iova, phys_addr_t paddr, size_t pgsize, size_t pgcount, int prot, gfp_t gfp, size_t *mapped);
	size_t (*unmap)(struct iommu_domain *domain, unsigned long iova, size_t size, struct iommu_iotlb_gather *gather);
	size_t (*unmap_pages)(struct iommu_domain *domain, unsigned long iova, size_t pgsize, size_t pgcount, struct iommu_iotlb_gather *gather);
	void (*flush_iotlb_all)(struct iommu_domain *domain);
	int (*iotlb_sync_map)(struct iommu_domain *domain, unsigned long iova, size_t size);
	void (*iotlb_sync)(struct iommu_domain *domain, struct iommu_iotlb_gather *gather);
	phys_addr_t (*iova_to_phys)(struct iommu_domain *domain, dma_addr_t iova);
	void (*free)(struct iommu_domain *domain);
};
struct iommu_domain {
	unsigned type;
	const struct iommu_domain_ops *ops;
	unsigned long pgsize_bitmap;
	struct iommu_domain_geometry geometry;
	iommu_fault_handler_t handler;
	void *handler_token;
	/* The engine's domain id. */
	int soc_id;
};
struct iommu_device {
	const struct iommu_ops *ops;
	struct fwnode_handle *fwnode;
	struct device *dev;
	const char *name;
};
struct iommu_ops {
	bool (*capable)(struct device *dev, int cap);
	struct iommu_domain *(*domain_alloc)(unsigned iommu_domain_type);
	struct iommu_domain *(*domain_alloc_paging)(struct device *dev);
	struct iommu_device *(*probe_device)(struct device *dev);
	void (*release_device)(struct device *dev);
	void (*probe_finalize)(struct device *dev);
	struct iommu_group *(*device_group)(struct device *dev);
	void (*get_resv_regions)(struct device *dev, struct list_head *list);
	int (*of_xlate)(struct device *dev, struct of_phandle_args *args);
	bool (*is_attach_deferred)(struct device *dev);
	int (*def_domain_type)(struct device *dev);
	void (*set_platform_dma_ops)(struct device *dev);
	const struct iommu_domain_ops *default_domain_ops;
	unsigned long pgsize_bitmap;
	void *owner;
	struct iommu_domain *identity_domain;
	struct iommu_domain *blocked_domain;
	struct iommu_domain *default_domain;
};
static inline void *dev_iommu_priv_get(struct device *dev) { return dev->iommu ? dev->iommu->priv : NULL; }
void dev_iommu_priv_set(struct device *dev, void *priv);
struct iommu_fwspec *dev_iommu_fwspec_get(struct device *dev);
int iommu_fwspec_add_ids(struct device *dev, const u32 *ids, int num_ids);
int iommu_fwspec_init(struct device *dev, struct fwnode_handle *iommu_fwnode);
int iommu_device_register(struct iommu_device *iommu, const struct iommu_ops *ops, struct device *hwdev);
void iommu_device_unregister(struct iommu_device *iommu);
int iommu_device_sysfs_add(struct iommu_device *iommu, struct device *parent, const void *groups, const char *fmt, ...);
void iommu_device_sysfs_remove(struct iommu_device *iommu);
struct iommu_group *iommu_group_alloc(void);
struct iommu_group *iommu_group_ref_get(struct iommu_group *group);
void iommu_group_put(struct iommu_group *group);
struct iommu_group *generic_device_group(struct device *dev);
struct iommu_group *generic_single_device_group(struct device *dev);
struct iommu_domain *iommu_get_domain_for_dev(struct device *dev);
int report_iommu_fault(struct iommu_domain *domain, struct device *dev, unsigned long iova, int flags);
static inline void iommu_iotlb_gather_init(struct iommu_iotlb_gather *g)
{
	g->start = ULONG_MAX;
	g->end = 0;
	g->pgsize = 0;
	INIT_LIST_HEAD(&g->freelist);
	g->queued = false;
}
static inline void iommu_iotlb_gather_add_range(struct iommu_iotlb_gather *g, unsigned long iova, size_t size)
{
	unsigned long end = iova + size - 1;
	if (g->start > iova)
		g->start = iova;
	if (g->end < end)
		g->end = end;
}
static inline void iommu_iotlb_gather_add_page(struct iommu_domain *domain, struct iommu_iotlb_gather *g, unsigned long iova, size_t size)
{
	if ((g->pgsize && g->pgsize != size) || (g->end && (iova + size < g->start || iova > g->end + 1))) {
		if (domain->ops->iotlb_sync)
			domain->ops->iotlb_sync(domain, g);
		iommu_iotlb_gather_init(g);
	}
	g->pgsize = size;
	iommu_iotlb_gather_add_range(g, iova, size);
}

#endif
