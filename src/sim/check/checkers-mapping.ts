/**
 * The kernel's promises, kept beside the page tables: every range a map call reported as mapped,
 * until an unmap takes it away. The lost-mapping checker compares the tables with this.
 */
export interface Promised {
  iova: number;
  size: number;
  pa: number;
  time: number;
  site?: string;
}

/** Promised ranges of one domain, sorted by IOVA, never overlapping. */
export class PromisedMappings {
  private ranges: Promised[] = [];

  add(p: Promised): void {
    this.remove(p.iova, p.size);
    let i = 0;
    while (i < this.ranges.length && this.ranges[i]!.iova < p.iova) i++;
    this.ranges.splice(i, 0, p);
  }

  /** Take [iova, +size) away, splitting ranges that stick out of it. */
  remove(iova: number, size: number): void {
    const end = iova + size;
    const out: Promised[] = [];
    for (const r of this.ranges) {
      const rEnd = r.iova + r.size;
      if (rEnd <= iova || r.iova >= end) {
        out.push(r);
        continue;
      }
      if (r.iova < iova) out.push({ ...r, size: iova - r.iova });
      if (rEnd > end) out.push({ ...r, iova: end, pa: r.pa + (end - r.iova), size: rEnd - end });
    }
    this.ranges = out;
  }

  /** Ranges overlapping [from, to). */
  within(from: number, to: number): Promised[] {
    return this.ranges.filter((r) => r.iova < to && r.iova + r.size > from);
  }

  get size(): number {
    return this.ranges.length;
  }

  list(): Promised[] {
    return this.ranges.map((r) => ({ ...r }));
  }

  static from(list: Promised[]): PromisedMappings {
    const m = new PromisedMappings();
    m.ranges = list.map((r) => ({ ...r }));
    return m;
  }
}
