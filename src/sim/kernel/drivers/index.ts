/** The IOMMU drivers the kernel can probe, by config model. */
import type { KernelDriver } from '../kernel';
import { rockchipIommuDriver } from './rockchip';
import { sun50iIommuDriver } from './sun50i';

export function iommuDrivers(): KernelDriver[] {
  return [sun50iIommuDriver(), rockchipIommuDriver()];
}
