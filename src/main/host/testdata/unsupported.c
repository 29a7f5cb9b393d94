#include <linux/iommu.h>
#include <linux/platform_device.h>

int iommu_frobnicate(int x);

static int unsupported_probe(struct platform_device *pdev)
{
	return iommu_frobnicate(1);
}

static struct platform_driver unsupported_driver = {
	.probe = unsupported_probe,
	.driver = { .name = "unsupported" },
};
module_platform_driver(unsupported_driver);
