import type { IommuConfig } from '../config/types';
import type { HwContext, IommuModel } from './types';

/** Builds an IOMMU model instance from its config entry. */
export type IommuFactory = (cfg: IommuConfig, ctx: HwContext) => IommuModel;

/** The IOMMU models the engine knows, by config `model` name; filled in by each model module. */
export function createIommuRegistry(entries: Record<string, IommuFactory>): ReadonlyMap<string, IommuFactory> {
  return new Map(Object.entries(entries));
}
