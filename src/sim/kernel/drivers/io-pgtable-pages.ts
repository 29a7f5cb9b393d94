/**
 * The io-pgtable table allocator of a domain, over the kernel page allocator: tables of a page or more
 * come from alloc_pages (v7s L1 16 KiB = order 2, LPAE tables), smaller ones from a kmem_cache whose
 * objects are aligned to their size (v7s L2 1 KiB, an LPAE pgd of 64 bytes). Every table carries a
 * page-table owner tag (domain, level, IOMMU), so leaks at domain free and walks of freed tables can
 * be named.
 */
import type { PgtableAllocator, PgtableOwner } from '../io-pgtable';
import { PAGE_SIZE, type PageAllocator, type SlabCache } from '../page-alloc';

const CACHE_NAMES: Record<string, string> = { 'arm-v7s/1024': 'io-pgtable_armv7s_l2' };

export class PagePgtableAllocator implements PgtableAllocator {
  /** Live tables: the slab cache they came from, or their page order. */
  private readonly held = new Map<number, SlabCache | number>();

  constructor(
    private readonly pages: PageAllocator,
    private readonly domain: number,
    private readonly iommu: string,
  ) {}

  allocTable(size: number, align: number, owner: PgtableOwner): number | null {
    const tag = { kind: 'pgtable' as const, domain: this.domain, level: owner.level, iommu: this.iommu };
    if (size < PAGE_SIZE) {
      if (align > size) throw new Error(`io-pgtable: a ${size}-byte table aligned to ${align} cannot come from a kmem_cache`);
      const cache = this.pages.createCache(CACHE_NAMES[`${owner.fmt}/${size}`] ?? `io-pgtable-${owner.fmt}-${size}`, size);
      const pa = cache.alloc(tag, { zero: true });
      if (pa !== null) this.held.set(pa, cache);
      return pa;
    }
    const order = Math.ceil(Math.log2(size / PAGE_SIZE));
    const pa = this.pages.allocPages(order, tag, { zero: true });
    if (pa !== null) this.held.set(pa, order);
    return pa;
  }

  freeTable(pa: number): void {
    const h = this.held.get(pa);
    // Not a table of ours: the page allocator reports the double free.
    if (h === undefined) return this.pages.freePages(pa);
    this.held.delete(pa);
    if (typeof h === 'number') this.pages.freePages(pa, h);
    else h.free(pa);
  }

  snapshot(): unknown {
    return new Map(this.held);
  }

  restore(s: unknown): void {
    this.held.clear();
    for (const [pa, h] of s as Map<number, SlabCache | number>) this.held.set(pa, h);
  }

  /** Tables still held (freeing the domain should leave none). */
  get live(): number {
    return this.held.size;
  }
}
