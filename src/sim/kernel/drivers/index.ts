/** The IOMMU drivers the kernel can probe, by config model. */
import type { KernelDriver } from '../kernel';
import { armSmmuDriver } from './arm-smmu';
import { mtkIommuDriver } from './mtk-iommu';
import { rockchipIommuDriver } from './rockchip';
import { sun50iIommuDriver } from './sun50i';

export function iommuDrivers(): KernelDriver[] {
  return [sun50iIommuDriver(), rockchipIommuDriver(), mtkIommuDriver(), armSmmuDriver()];
}
