// A minimal IOMMU driver for the bridge's failure paths: attach WARNs, map traps, unmap BUGs.
#include <linux/iommu.h>
#include <linux/platform_device.h>
#include <linux/slab.h>

struct oops_iommu {
	struct iommu_device iommu;
	struct iommu_group *group;
};

static struct oops_iommu *the_iommu;

static int oops_attach(struct iommu_domain *domain, struct device *dev)
{
	WARN_ON(domain->type == IOMMU_DOMAIN_UNMANAGED);
	return 0;
}

static int oops_map(struct iommu_domain *domain, unsigned long iova, phys_addr_t paddr,
		    size_t pgsize, size_t pgcount, int prot, gfp_t gfp, size_t *mapped)
{
	if (iova == 0x1000)
		__builtin_trap();
	if (iova == 0x3000)
		return *(volatile int *)(uintptr_t)0x10;
	*mapped += pgsize;
	return 0;
}

static size_t oops_unmap(struct iommu_domain *domain, unsigned long iova, size_t pgsize,
			 size_t pgcount, struct iommu_iotlb_gather *gather)
{
	BUG_ON(iova == 0x2000);
	return pgsize;
}

static phys_addr_t oops_iova_to_phys(struct iommu_domain *domain, dma_addr_t iova)
{
	return 0;
}

static void oops_free(struct iommu_domain *domain)
{
	kfree(domain);
}

static const struct iommu_domain_ops oops_domain_ops = {
	.attach_dev = oops_attach,
	.map_pages = oops_map,
	.unmap_pages = oops_unmap,
	.iova_to_phys = oops_iova_to_phys,
	.free = oops_free,
};

static struct iommu_domain *oops_domain_alloc_paging(struct device *dev)
{
	struct iommu_domain *d = kzalloc(sizeof(*d), GFP_KERNEL);

	if (d)
		d->ops = &oops_domain_ops;
	return d;
}

static struct iommu_device *oops_probe_device(struct device *dev)
{
	return &the_iommu->iommu;
}

static struct iommu_group *oops_device_group(struct device *dev)
{
	return iommu_group_ref_get(the_iommu->group);
}

static const struct iommu_ops oops_ops = {
	.pgsize_bitmap = SZ_4K,
	.domain_alloc_paging = oops_domain_alloc_paging,
	.probe_device = oops_probe_device,
	.device_group = oops_device_group,
};

static int oops_probe(struct platform_device *pdev)
{
	the_iommu = devm_kzalloc(&pdev->dev, sizeof(*the_iommu), GFP_KERNEL);
	the_iommu->group = iommu_group_alloc();
	pr_info("oops-iommu: probed %s at %pa\n", dev_name(&pdev->dev), &pdev->resource[0].start);
	return iommu_device_register(&the_iommu->iommu, &oops_ops, &pdev->dev);
}

static struct platform_driver oops_driver = {
	.probe = oops_probe,
	.driver = { .name = "oops-iommu" },
};
module_platform_driver(oops_driver);
