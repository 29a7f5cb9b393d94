// SPDX-License-Identifier: MIT
/*
 * Allwinner H6 IOMMU driver, written for SoC Console from the hardware facts
 * (/work/shared/design/hardware-facts.md §1, the register descriptions of src/sim/hw/sun50i-h6.ts)
 * in the form of the Linux v6.8 IOMMU API: a static identity domain, domain_alloc_paging,
 * map_pages/unmap_pages one 4 KiB page at a time, a two-level table (DT of 4096 DTEs, PTs of 256
 * PTEs) the non-coherent walker reads from memory.
 *
 * It behaves as mainline does: a paging domain's refcount is 1 at alloc and +1 per attach_dev;
 * leaving it (the identity attach, or a switch to another paging domain) drops one reference and
 * tears it down (PTs freed, translation off) only at zero, so a switch rewrites TTB with ENABLE
 * still 1; domain_free frees the DT only (the PTs leak, and a live domain's DT stays in TTB); map
 * before the first attach dereferences the still NULL domain->iommu (an oops).
 *
 * Historic variants, each a define named as the TypeScript driver's variant:
 *   SUN50I_FLUSH_TABLES          flushTables: clean written table entries to memory (1, mainline;
 *                                0: P6, the walker sees stale RAM)
 *   SUN50I_DETACH_BEFORE_FREE    detachBeforeFree: domain_free turns a live domain's translation
 *                                off, flushes, and frees its PTs with the DT (0, mainline; 1: P7's fix)
 *   SUN50I_INVALIDATE_ON_SWITCH  invalidateOnSwitch: flush TLBs and PTW cache when a domain is
 *                                installed (1, mainline; 0: P9)
 *   SUN50I_LEAVE_DOMAIN_DISABLE  leaveDomain 'disable': leaving a domain disables at once, no refcount
 *   SUN50I_MAP_BEFORE_ATTACH_OK  mapBeforeAttach 'ok': domain->iommu is set at alloc, so map works
 * The first three may be soc_variant("name", default) (switchable by setVariant); the last two
 * are build-time only (0 by default).
 */
#include <linux/bitfield.h>
#include <linux/bug.h>
#include <linux/clk.h>
#include <linux/dma-mapping.h>
#include <linux/err.h>
#include <linux/interrupt.h>
#include <linux/iommu.h>
#include <linux/iopoll.h>
#include <linux/module.h>
#include <linux/platform_device.h>
#include <linux/reset.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/spinlock.h>

#ifndef SUN50I_FLUSH_TABLES
#define SUN50I_FLUSH_TABLES 1
#endif
#ifndef SUN50I_DETACH_BEFORE_FREE
#define SUN50I_DETACH_BEFORE_FREE 0
#endif
#ifndef SUN50I_INVALIDATE_ON_SWITCH
#define SUN50I_INVALIDATE_ON_SWITCH 1
#endif
#ifndef SUN50I_LEAVE_DOMAIN_DISABLE
#define SUN50I_LEAVE_DOMAIN_DISABLE 0
#endif
#ifndef SUN50I_MAP_BEFORE_ATTACH_OK
#define SUN50I_MAP_BEFORE_ATTACH_OK 0
#endif

/* Registers (hardware-facts §1.2). */
#define H6_RESET		0x010
#define H6_ENABLE		0x020
#define H6_AUTO_GATING		0x040
#define H6_TTB			0x050
#define H6_TLB_PREFETCH		0x070
#define H6_TLB_FLUSH		0x080
#define H6_TLB_IVLD_ADDR	0x090
#define H6_TLB_IVLD_MASK	0x094
#define H6_TLB_IVLD_EN		0x098
#define H6_PC_IVLD_ADDR		0x0a0
#define H6_PC_IVLD_EN		0x0a8
#define H6_DM_AUT_CTRL(aci)	(0x0b0 + ((aci) >> 1) * 4)
#define H6_INT_ENABLE		0x100
#define H6_INT_CLR		0x104
#define H6_INT_STA		0x108
#define H6_INT_ERR_ADDR(m)	(0x110 + (m) * 4)
#define H6_INT_ERR_ADDR_L1	0x130
#define H6_INT_ERR_ADDR_L2	0x134
#define H6_INT_ERR_DATA(m)	(0x150 + (m) * 4)
#define H6_L1PG_INT		0x180
#define H6_L2PG_INT		0x184

#define H6_MASTERS		6
#define H6_MASTER_BITS		GENMASK(H6_MASTERS - 1, 0)
#define H6_INT_L1PG		BIT(16)
#define H6_INT_L2PG		BIT(17)
#define H6_INT_ALL		(H6_INT_L1PG | H6_INT_L2PG | H6_MASTER_BITS)
#define H6_FLUSH_ALL		(BIT(17) | BIT(16) | H6_MASTER_BITS)

/* Authority control indices: 1 none, 2 read, 3 write, 4 read+write (§1.4). */
enum h6_aci { ACI_NONE = 1, ACI_RD = 2, ACI_WR = 3, ACI_RD_WR = 4 };
#define AUT_RD_OFF(aci, m)	BIT(((aci) & 1) * 16 + (m) * 2)
#define AUT_WR_OFF(aci, m)	BIT(((aci) & 1) * 16 + (m) * 2 + 1)

#define DT_ENTRIES		4096
#define DT_BYTES		(DT_ENTRIES * 4)
#define PT_ENTRIES		256
#define PT_BYTES		(PT_ENTRIES * 4)

#define IOVA_DT_INDEX		GENMASK(31, 20)
#define IOVA_PT_INDEX		GENMASK(19, 12)
#define IOVA_OFFSET		GENMASK(11, 0)
#define DTE_PT_ADDR		GENMASK(31, 10)
#define DTE_VALID_FIELD		GENMASK(1, 0)
#define PTE_PAGE_ADDR		GENMASK(31, 12)
#define PTE_ACI			GENMASK(7, 4)
#define PTE_VALID		BIT(1)

struct h6_iommu {
	struct iommu_device iommu;
	spinlock_t lock;		/* serialises register sequences */
	struct device *dev;
	void __iomem *regs;
	struct clk *clk;
	struct reset_control *rst;
	struct iommu_domain *cur;	/* &h6_identity, the paging domain in TTB, NULL after a teardown */
	struct iommu_group *group;
	struct kmem_cache *pts;
};

struct h6_domain {
	struct iommu_domain domain;
	struct h6_iommu *iommu;		/* set by the first attach (at alloc with MAP_BEFORE_ATTACH_OK) */
	int refcnt;			/* 1 at alloc, +1 per attach_dev, -1 per leave */
	bool installed;			/* TTB pointed at it at least once */
	u32 *dt;
	dma_addr_t dt_dma;
};

static struct h6_domain *to_h6(struct iommu_domain *d)
{
	return container_of(d, struct h6_domain, domain);
}

static struct iommu_domain h6_identity;

/* The paging domain translation runs through, or NULL. */
static struct iommu_domain *live_domain(struct h6_iommu *h)
{
	return h->cur == &h6_identity ? NULL : h->cur;
}

static u32 rd(struct h6_iommu *h, u32 off)
{
	return readl(h->regs + off);
}

static void wr(struct h6_iommu *h, u32 off, u32 val)
{
	writel(val, h->regs + off);
}

static bool dte_ok(u32 dte)
{
	return FIELD_GET(DTE_VALID_FIELD, dte) == 1;
}

static bool pte_ok(u32 pte)
{
	return pte & PTE_VALID;
}

static u32 make_pte(phys_addr_t pa, int prot)
{
	enum h6_aci aci = ACI_NONE;

	if ((prot & IOMMU_READ) && (prot & IOMMU_WRITE))
		aci = ACI_RD_WR;
	else if (prot & IOMMU_READ)
		aci = ACI_RD;
	else if (prot & IOMMU_WRITE)
		aci = ACI_WR;
	return ((u32)pa & PTE_PAGE_ADDR) | FIELD_PREP(PTE_ACI, aci) | PTE_VALID;
}

/* The walker does not snoop: written entries must reach RAM. */
static void clean_entries(struct h6_iommu *h, void *va, unsigned int n)
{
	if (SUN50I_FLUSH_TABLES)
		dma_sync_single_for_device(h->dev, virt_to_phys(va), n * 4, DMA_TO_DEVICE);
}

static int wait_clear(struct h6_iommu *h, u32 off)
{
	u32 v;

	return readl_poll_timeout_atomic(h->regs + off, v, !v, 1, 2000);
}

static int flush_everything(struct h6_iommu *h)
{
	int ret;

	assert_spin_locked(&h->lock);
	wr(h, H6_TLB_FLUSH, H6_FLUSH_ALL);
	ret = wait_clear(h, H6_TLB_FLUSH);
	if (ret)
		dev_warn(h->dev, "TLB Flush timed out!\n");
	return ret;
}

static void zap_one(struct h6_iommu *h, unsigned long iova)
{
	wr(h, H6_TLB_IVLD_ADDR, iova);
	wr(h, H6_TLB_IVLD_MASK, PTE_PAGE_ADDR);
	wr(h, H6_TLB_IVLD_EN, 1);
	if (wait_clear(h, H6_TLB_IVLD_EN))
		dev_warn(h->dev, "TLB invalidation timed out!\n");
}

static void zap_walk(struct h6_iommu *h, unsigned long iova)
{
	wr(h, H6_PC_IVLD_ADDR, iova);
	wr(h, H6_PC_IVLD_EN, 1);
	if (wait_clear(h, H6_PC_IVLD_EN))
		dev_warn(h->dev, "PTW cache invalidation timed out!\n");
}

/* §1.8: the neighbouring page and MiB too, as the vendor kernel does. */
static void zap_range(struct h6_iommu *h, unsigned long iova, size_t size)
{
	assert_spin_locked(&h->lock);
	wr(h, H6_AUTO_GATING, 0);
	zap_one(h, iova);
	zap_one(h, iova + SZ_4K);
	if (size > SZ_4K) {
		zap_one(h, iova + size);
		zap_one(h, iova + size + SZ_4K);
	}
	zap_walk(h, iova);
	zap_walk(h, iova + SZ_1M);
	if (size > SZ_1M) {
		zap_walk(h, iova + size);
		zap_walk(h, iova + size + SZ_1M);
	}
	wr(h, H6_AUTO_GATING, 1);
}

/* §1.9: install the current domain's DT and turn translation on. */
static int h6_enable(struct h6_iommu *h)
{
	struct h6_domain *hd;
	unsigned long flags;
	u32 none = 0, rdonly = 0, wronly = 0;
	int m, ret;

	if (!live_domain(h))
		return 0;
	hd = to_h6(h->cur);
	ret = reset_control_deassert(h->rst);
	if (ret)
		return ret;
	ret = clk_prepare_enable(h->clk);
	if (ret) {
		reset_control_assert(h->rst);
		return ret;
	}
	for (m = 0; m < H6_MASTERS; m++) {
		none |= AUT_RD_OFF(ACI_NONE, m) | AUT_WR_OFF(ACI_NONE, m);
		rdonly |= AUT_WR_OFF(ACI_RD, m);
		wronly |= AUT_RD_OFF(ACI_WR, m);
	}

	spin_lock_irqsave(&h->lock, flags);
	wr(h, H6_TTB, hd->dt_dma);
	wr(h, H6_TLB_PREFETCH, H6_MASTER_BITS);
	wr(h, H6_INT_ENABLE, H6_INT_ALL);
	wr(h, H6_DM_AUT_CTRL(ACI_NONE), none);
	/* ACI 2 and 3 share a register: two plain stores, the second wins (§1.4). */
	wr(h, H6_DM_AUT_CTRL(ACI_RD), rdonly);
	wr(h, H6_DM_AUT_CTRL(ACI_WR), wronly);
	if (SUN50I_INVALIDATE_ON_SWITCH) {
		ret = flush_everything(h);
		if (ret) {
			spin_unlock_irqrestore(&h->lock, flags);
			clk_disable_unprepare(h->clk);
			reset_control_assert(h->rst);
			return ret;
		}
	}
	wr(h, H6_AUTO_GATING, 1);
	wr(h, H6_ENABLE, 1);
	spin_unlock_irqrestore(&h->lock, flags);
	return 0;
}

static void h6_disable(struct h6_iommu *h)
{
	unsigned long flags;

	spin_lock_irqsave(&h->lock, flags);
	wr(h, H6_ENABLE, 0);
	wr(h, H6_TTB, 0);
	spin_unlock_irqrestore(&h->lock, flags);
	clk_disable_unprepare(h->clk);
	reset_control_assert(h->rst);
}

static u32 *new_pt(struct h6_iommu *h, gfp_t gfp)
{
	u32 *pt = kmem_cache_zalloc(h->pts, gfp);
	dma_addr_t dma;

	if (!pt)
		return ERR_PTR(-ENOMEM);
	dma = dma_map_single(h->dev, pt, PT_BYTES, DMA_TO_DEVICE);
	if (dma_mapping_error(h->dev, dma)) {
		kmem_cache_free(h->pts, pt);
		return ERR_PTR(-ENOMEM);
	}
	/* The table walker takes the physical address: no IOMMU sits in front of it. */
	WARN_ON(dma != virt_to_phys(pt));
	return pt;
}

static void drop_pt(struct h6_iommu *h, u32 *pt)
{
	dma_unmap_single(h->dev, virt_to_phys(pt), PT_BYTES, DMA_TO_DEVICE);
	kmem_cache_free(h->pts, pt);
}

/* The PT behind iova's DTE; a new one is installed lock-free, the cmpxchg loser drops its own. */
static u32 *pt_for(struct h6_domain *hd, struct h6_iommu *h, unsigned long iova, gfp_t gfp)
{
	u32 *slot = &hd->dt[FIELD_GET(IOVA_DT_INDEX, iova)];
	u32 dte = *slot, seen;
	u32 *pt;

	if (dte_ok(dte))
		return phys_to_virt(dte & DTE_PT_ADDR);
	pt = new_pt(h, gfp);
	if (IS_ERR(pt))
		return pt;
	dte = ((u32)virt_to_phys(pt) & DTE_PT_ADDR) | 1;
	seen = cmpxchg(slot, 0, dte);
	if (seen) {
		drop_pt(h, pt);
		pt = phys_to_virt(seen & DTE_PT_ADDR);
	}
	clean_entries(h, pt, PT_ENTRIES);
	clean_entries(h, slot, 1);
	return pt;
}

static int h6_map_pages(struct iommu_domain *domain, unsigned long iova, phys_addr_t paddr,
			size_t pgsize, size_t pgcount, int prot, gfp_t gfp, size_t *mapped)
{
	struct h6_domain *hd = to_h6(domain);
	struct h6_iommu *h = hd->iommu;
	u32 *pt, *pte;

	pt = pt_for(hd, h, iova, gfp);
	if (IS_ERR(pt))
		return PTR_ERR(pt);
	pte = &pt[FIELD_GET(IOVA_PT_INDEX, iova)];
	if (unlikely(pte_ok(*pte))) {
		phys_addr_t old = *pte & PTE_PAGE_ADDR;

		dev_err(h->dev, "iova %pad already mapped to %pa cannot remap to %pa prot: %#x\n",
			&iova, &old, &paddr, prot);
		return -EBUSY;
	}
	*pte = make_pte(paddr, prot);
	clean_entries(h, pte, 1);
	*mapped += SZ_4K;
	return 0;
}

static size_t h6_unmap_pages(struct iommu_domain *domain, unsigned long iova, size_t pgsize,
			     size_t pgcount, struct iommu_iotlb_gather *gather)
{
	struct h6_domain *hd = to_h6(domain);
	u32 dte = hd->dt[FIELD_GET(IOVA_DT_INDEX, iova)];
	u32 *pte;

	if (!dte_ok(dte))
		return 0;
	pte = (u32 *)phys_to_virt(dte & DTE_PT_ADDR) + FIELD_GET(IOVA_PT_INDEX, iova);
	if (!pte_ok(*pte))
		return 0;
	*pte = 0;
	clean_entries(hd->iommu, pte, 1);
	return SZ_4K;
}

static phys_addr_t h6_iova_to_phys(struct iommu_domain *domain, dma_addr_t iova)
{
	struct h6_domain *hd = to_h6(domain);
	u32 dte = hd->dt[FIELD_GET(IOVA_DT_INDEX, iova)];
	u32 pte;

	if (!dte_ok(dte))
		return 0;
	pte = ((u32 *)phys_to_virt(dte & DTE_PT_ADDR))[FIELD_GET(IOVA_PT_INDEX, iova)];
	if (!pte_ok(pte))
		return 0;
	return (pte & PTE_PAGE_ADDR) + FIELD_GET(IOVA_OFFSET, iova);
}

static void h6_flush_iotlb_all(struct iommu_domain *domain)
{
	struct h6_iommu *h = to_h6(domain)->iommu;
	unsigned long flags;

	/* Not installed yet: enabling flushes everything anyway. */
	if (!to_h6(domain)->installed)
		return;
	spin_lock_irqsave(&h->lock, flags);
	flush_everything(h);
	spin_unlock_irqrestore(&h->lock, flags);
}

static int h6_iotlb_sync_map(struct iommu_domain *domain, unsigned long iova, size_t size)
{
	struct h6_iommu *h = to_h6(domain)->iommu;
	unsigned long flags;

	if (!to_h6(domain)->installed)
		return 0;
	spin_lock_irqsave(&h->lock, flags);
	zap_range(h, iova, size);
	spin_unlock_irqrestore(&h->lock, flags);
	return 0;
}

static void h6_iotlb_sync(struct iommu_domain *domain, struct iommu_iotlb_gather *gather)
{
	h6_flush_iotlb_all(domain);
}

static struct h6_iommu *h6_of(struct device *dev)
{
	return dev_iommu_priv_get(dev);
}

/* The refcount reached zero: PTs freed (DTEs cleared first), translation off. */
static void h6_teardown(struct h6_iommu *h, struct h6_domain *hd)
{
	int i;

	for (i = 0; i < DT_ENTRIES; i++) {
		u32 dte = hd->dt[i];

		if (!dte_ok(dte))
			continue;
		hd->dt[i] = 0;
		clean_entries(h, &hd->dt[i], 1);
		drop_pt(h, phys_to_virt(dte & DTE_PT_ADDR));
	}
	h6_disable(h);
	h->cur = NULL;
}

static int h6_identity_attach(struct iommu_domain *identity, struct device *dev)
{
	struct h6_iommu *h = h6_of(dev);
	struct h6_domain *hd;

	if (h->cur == &h6_identity)
		return 0;
	if (SUN50I_LEAVE_DOMAIN_DISABLE) {
		h->cur = &h6_identity;
		h6_disable(h);
		return 0;
	}
	/* After a teardown h->cur is NULL, and this dereferences it, as mainline does. */
	hd = to_h6(h->cur);
	if (--hd->refcnt == 0)
		h6_teardown(h, hd);
	return 0;
}

static struct iommu_domain h6_identity = {
	.type = IOMMU_DOMAIN_IDENTITY,
	.ops = &(const struct iommu_domain_ops) {
		.attach_dev = h6_identity_attach,
	},
};

static int h6_attach_dev(struct iommu_domain *domain, struct device *dev)
{
	struct h6_domain *hd = to_h6(domain);
	struct h6_iommu *h = h6_of(dev);

	if (!h)
		return -ENODEV;
	if (!SUN50I_LEAVE_DOMAIN_DISABLE)
		hd->refcnt++;
	if (h->cur == domain)
		return 0;
	h6_identity_attach(&h6_identity, dev);
	h->cur = domain;
	hd->iommu = h;
	hd->installed = true;
	hd->dt_dma = dma_map_single(h->dev, hd->dt, DT_BYTES, DMA_TO_DEVICE);
	/* Like mainline, a failed enable is not reported to the core. */
	h6_enable(h);
	return 0;
}

static struct iommu_domain *h6_domain_alloc_paging(struct device *dev)
{
	struct h6_domain *hd = kzalloc(sizeof(*hd), GFP_KERNEL);

	if (!hd)
		return NULL;
	if (SUN50I_MAP_BEFORE_ATTACH_OK)
		hd->iommu = h6_of(dev);
	hd->refcnt = 1;
	hd->dt = (u32 *)__get_free_pages(GFP_KERNEL | __GFP_ZERO, get_order(DT_BYTES));
	if (!hd->dt) {
		kfree(hd);
		return NULL;
	}
	hd->domain.geometry.aperture_start = 0;
	hd->domain.geometry.aperture_end = DMA_BIT_MASK(32);
	hd->domain.geometry.force_aperture = true;
	return &hd->domain;
}

static void h6_domain_free(struct iommu_domain *domain)
{
	struct h6_domain *hd = to_h6(domain);
	struct h6_iommu *h = hd->iommu;
	unsigned long flags;
	int i;

	/* Mainline frees the DT only: the PTs leak, and a live DT stays in TTB. */
	if (SUN50I_DETACH_BEFORE_FREE && h) {
		if (h->cur == domain) {
			h->cur = &h6_identity;
			/* Invalidate while the clock still runs: disable gates it and asserts the reset. */
			spin_lock_irqsave(&h->lock, flags);
			flush_everything(h);
			spin_unlock_irqrestore(&h->lock, flags);
			h6_disable(h);
		}
		for (i = 0; i < DT_ENTRIES; i++) {
			u32 dte = hd->dt[i];

			if (dte_ok(dte))
				drop_pt(h, phys_to_virt(dte & DTE_PT_ADDR));
		}
	}
	free_pages((unsigned long)hd->dt, get_order(DT_BYTES));
	kfree(hd);
}

static struct iommu_device *h6_probe_device(struct device *dev)
{
	struct h6_iommu *h = h6_of(dev);

	return h ? &h->iommu : ERR_PTR(-ENODEV);
}

static struct iommu_group *h6_device_group(struct device *dev)
{
	return iommu_group_ref_get(h6_of(dev)->group);
}

static int h6_of_xlate(struct device *dev, struct of_phandle_args *args)
{
	struct platform_device *pdev = of_find_device_by_node(args->np);
	u32 id = args->args[0];

	dev_iommu_priv_set(dev, platform_get_drvdata(pdev));
	return iommu_fwspec_add_ids(dev, &id, 1);
}

static const struct iommu_ops h6_ops = {
	.identity_domain = &h6_identity,
	.pgsize_bitmap = SZ_4K,
	.device_group = h6_device_group,
	.domain_alloc_paging = h6_domain_alloc_paging,
	.of_xlate = h6_of_xlate,
	.probe_device = h6_probe_device,
	.default_domain_ops = &(const struct iommu_domain_ops) {
		.attach_dev = h6_attach_dev,
		.flush_iotlb_all = h6_flush_iotlb_all,
		.iotlb_sync_map = h6_iotlb_sync_map,
		.iotlb_sync = h6_iotlb_sync,
		.iova_to_phys = h6_iova_to_phys,
		.map_pages = h6_map_pages,
		.unmap_pages = h6_unmap_pages,
		.free = h6_domain_free,
	},
};

/* §1.11: report, zap the faulting page, acknowledge, pulse the offending masters' resets. */
static irqreturn_t h6_irq(int irq, void *data)
{
	struct h6_iommu *h = data;
	u32 status, l1, l2, iova, blame;
	unsigned int master;
	int dir = IOMMU_FAULT_READ;

	spin_lock(&h->lock);
	status = rd(h, H6_INT_STA);
	if (!(status & H6_INT_ALL)) {
		spin_unlock(&h->lock);
		return IRQ_NONE;
	}
	l1 = rd(h, H6_L1PG_INT);
	l2 = rd(h, H6_L2PG_INT);
	if (status & (H6_INT_L1PG | H6_INT_L2PG)) {
		bool second = status & H6_INT_L2PG;

		iova = rd(h, second ? H6_INT_ERR_ADDR_L2 : H6_INT_ERR_ADDR_L1);
		blame = second ? l2 : l1;
		master = ilog2(blame & H6_MASTER_BITS);
	} else {
		master = ilog2(status & H6_MASTER_BITS);
		iova = rd(h, H6_INT_ERR_ADDR(master));
		/* A page in the read-only index was written. */
		if (FIELD_GET(PTE_ACI, rd(h, H6_INT_ERR_DATA(master))) == ACI_RD)
			dir = IOMMU_FAULT_WRITE;
	}
	dev_err(h->dev, "Page fault for %#x (master %d, dir %s)\n", iova, master,
		dir == IOMMU_FAULT_WRITE ? "wr" : "rd");
	if (live_domain(h))
		report_iommu_fault(h->cur, h->dev, iova, dir);
	zap_range(h, iova, SZ_4K);
	wr(h, H6_INT_CLR, status);
	wr(h, H6_RESET, ~((status | l1 | l2) & H6_MASTER_BITS));
	wr(h, H6_RESET, 0xffffffff);
	spin_unlock(&h->lock);
	return IRQ_HANDLED;
}

static int h6_probe(struct platform_device *pdev)
{
	struct h6_iommu *h;
	int irq, ret;

	h = devm_kzalloc(&pdev->dev, sizeof(*h), GFP_KERNEL);
	if (!h)
		return -ENOMEM;
	spin_lock_init(&h->lock);
	h->cur = &h6_identity;
	/* Read each run-time variant once, so setVariant finds it before its first use. */
	(void)SUN50I_FLUSH_TABLES;
	(void)SUN50I_DETACH_BEFORE_FREE;
	(void)SUN50I_INVALIDATE_ON_SWITCH;
	platform_set_drvdata(pdev, h);
	h->dev = &pdev->dev;
	h->pts = kmem_cache_create(dev_name(&pdev->dev), PT_BYTES, PT_BYTES, SLAB_HWCACHE_ALIGN, NULL);
	if (!h->pts)
		return -ENOMEM;
	h->group = iommu_group_alloc();
	if (IS_ERR(h->group)) {
		ret = PTR_ERR(h->group);
		goto out_cache;
	}
	h->regs = devm_platform_ioremap_resource(pdev, 0);
	if (IS_ERR(h->regs)) {
		ret = PTR_ERR(h->regs);
		goto out_group;
	}
	irq = platform_get_irq(pdev, 0);
	if (irq < 0) {
		ret = irq;
		goto out_group;
	}
	h->clk = devm_clk_get(&pdev->dev, NULL);
	if (IS_ERR(h->clk)) {
		ret = PTR_ERR(h->clk);
		goto out_group;
	}
	h->rst = devm_reset_control_get(&pdev->dev, NULL);
	if (IS_ERR(h->rst)) {
		ret = PTR_ERR(h->rst);
		goto out_group;
	}
	ret = iommu_device_register(&h->iommu, &h6_ops, &pdev->dev);
	if (ret)
		goto out_group;
	ret = devm_request_irq(&pdev->dev, irq, h6_irq, 0, dev_name(&pdev->dev), h);
	if (ret < 0) {
		iommu_device_unregister(&h->iommu);
		goto out_group;
	}
	return 0;

out_group:
	iommu_group_put(h->group);
out_cache:
	kmem_cache_destroy(h->pts);
	return ret;
}

static const struct of_device_id h6_match[] = {
	{ .compatible = "allwinner,sun50i-h6-iommu" },
	{ }
};
MODULE_DEVICE_TABLE(of, h6_match);

static struct platform_driver h6_driver = {
	.probe = h6_probe,
	.driver = {
		.name = "sun50i-iommu",
		.of_match_table = h6_match,
		.suppress_bind_attrs = true,
	},
};
builtin_platform_driver(h6_driver);
MODULE_DESCRIPTION("Allwinner H6 IOMMU (SoC Console fixture)");
MODULE_LICENSE("MIT");
