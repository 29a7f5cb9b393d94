/** Shared wording of checker findings: addresses in hex, and the `where` every finding carries. */
import type { Finding } from '../core/findings';

export const hex = (n: number): string => `0x${n.toString(16)}`;

export interface WhereParts {
  iommu?: string;
  device?: string;
  iova?: number;
  domain?: number;
  pa?: number;
  /** Script call site (file:line) of the kernel call in progress, when the session provides one. */
  line?: string;
}

/** A finding's `where`: only the parts that are known, addresses in hex. */
export function where(p: WhereParts): NonNullable<Finding['where']> {
  const w: NonNullable<Finding['where']> = {};
  if (p.iommu !== undefined) w.iommu = p.iommu;
  if (p.device !== undefined) w.device = p.device;
  if (p.iova !== undefined) w.iova = hex(p.iova);
  if (p.domain !== undefined) w.domain = p.domain;
  if (p.pa !== undefined) w.pa = hex(p.pa);
  if (p.line !== undefined) w.line = p.line;
  return w;
}

/** " at <site>" when a call site is known. */
export const atSite = (site: string | undefined): string => (site ? ` at ${site}` : '');
