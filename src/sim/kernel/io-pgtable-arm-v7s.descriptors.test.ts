/**
 * Bit-exact property test of the v7s format: long random map/unmap sequences (every page size,
 * partial unmaps, overlaps) against an expected table built here from the VMSAv7 short-descriptor
 * layout (ARM DDI 0406C B3.5) and the io-pgtable API contract, not from the format's code. After
 * every operation the return value must match, and the touched L1 slots and their L2 tables must
 * hold exactly the expected 32-bit descriptors; every 32 operations and at the end, all of L1.
 */
import fc from 'fast-check';
import { runOp } from '../core/coop';
import { EEXIST } from './errno';
import {
  IOMMU_CACHE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  IO_PGTABLE_QUIRK_ARM_MTK_EXT,
  IO_PGTABLE_QUIRK_ARM_NS,
  IO_PGTABLE_QUIRK_NO_PERMS,
  SZ_16M,
  SZ_1M,
  SZ_4K,
  SZ_64K,
  type IoPgtableCfg,
  type PartialUnmap,
} from './io-pgtable';
import { armV7sAllocPgtable } from './io-pgtable-arm-v7s';
import { describeBitExact } from './io-pgtable-descriptor-suite';
import { recordingEnv } from './io-pgtable-testkit';
import { busPort } from './port';

/* ---------- Expected state: what each hardware entry must describe. ---------- */

type LeafKind = 'section' | 'supersection' | 'small' | 'large';
interface Leaf {
  kind: LeafKind;
  /** Output address of the whole section / supersection / page / large page. */
  base: number;
  prot: number;
}
interface Table {
  kind: 'table';
  l2: (Leaf | null)[];
}
type L1Entry = Leaf | Table | null;

const BIT = (n: number): number => 2 ** n;
const on = (cond: boolean, n: number): number => (cond ? BIT(n) : 0);

interface Quirks {
  ns: boolean;
  noPerms: boolean;
  mtk: boolean;
}

/**
 * Memory attributes as Linux chooses them, in the architecture's fields: TEX remap index 1 (TEX[0])
 * for normal memory, B|C for cacheable, B alone (TEX 0) for device; always shareable and not global.
 */
function memory(prot: number): { tex: number; b: boolean; c: boolean } {
  if (prot & IOMMU_MMIO) return { tex: 0, b: true, c: false };
  const cache = (prot & IOMMU_CACHE) !== 0;
  return { tex: 1, b: cache, c: cache };
}

/** MediaTek's extension: PA bits 32, 33, 34 in descriptor bits 9, 4, 5. */
function mtkBits(pa: number, q: Quirks): number {
  if (!q.mtk) return 0;
  const hi = Math.floor(pa / 2 ** 32);
  return on((hi & 1) !== 0, 9) + on((hi & 2) !== 0, 4) + on((hi & 4) !== 0, 5);
}

/** B3.5.1 section / supersection descriptor (simplified AP model: AP[0] is the access flag). */
function sectionDesc(l: Leaf, q: Quirks): number {
  const m = memory(l.prot);
  const perms = !q.noPerms;
  const base = l.kind === 'supersection' ? l.base % 2 ** 32 - (l.base % SZ_16M) : l.base % 2 ** 32 - (l.base % SZ_1M);
  return (
    2 + // bits 1:0 = 0b10
    on(m.b, 2) +
    on(m.c, 3) +
    on(perms && (l.prot & IOMMU_NOEXEC) !== 0, 4) +
    on(perms, 10) + // AP[0]: access flag
    on(perms && !(l.prot & IOMMU_PRIV), 11) + // AP[1]: unprivileged access
    m.tex * BIT(12) +
    on(perms && !(l.prot & IOMMU_WRITE), 15) + // AP[2]: read-only
    BIT(16) + // S
    BIT(17) + // nG
    on(l.kind === 'supersection', 18) +
    on(q.ns, 19) +
    base +
    mtkBits(l.base, q)
  );
}

/** B3.5.1 small page (bits 1 = 1, XN at bit 0) and large page (bits 1:0 = 0b01, TEX at 14:12, XN at 15). */
function pageDesc(l: Leaf, q: Quirks): number {
  const m = memory(l.prot);
  const perms = !q.noPerms;
  const xn = perms && (l.prot & IOMMU_NOEXEC) !== 0;
  const common = on(m.b, 2) + on(m.c, 3) + on(perms, 4) + on(perms && !(l.prot & IOMMU_PRIV), 5) + on(perms && !(l.prot & IOMMU_WRITE), 9) + BIT(10) + BIT(11) + mtkBits(l.base, q);
  const lo = l.base % 2 ** 32;
  if (l.kind === 'small') return 2 + on(xn, 0) + m.tex * BIT(6) + common + (lo - (lo % SZ_4K));
  return 1 + m.tex * BIT(12) + on(xn, 15) + common + (lo - (lo % SZ_64K));
}

/** Outcomes the generator reached, over all runs: the interesting cases must come up. */
const seen = new Map<string, number>();
const note = (k: string): void => void seen.set(k, (seen.get(k) ?? 0) + 1);

/** The io-pgtable contract, applied to the expected table. */
class ExpectedV7s {
  readonly l1: L1Entry[];

  constructor(
    l1Ptes: number,
    private readonly variant: PartialUnmap,
  ) {
    this.l1 = new Array<L1Entry>(l1Ptes).fill(null);
  }

  tables(): number {
    return this.l1.filter((e) => e?.kind === 'table').length;
  }

  private static i1(iova: number): number {
    return Math.floor(iova / SZ_1M);
  }

  private static i2(iova: number): number {
    return Math.floor(iova / SZ_4K) % 256;
  }

  /** map_pages: pgcount pages one after the other, stopping at the first error. */
  map(iova: number, pa: number, size: number, count: number, prot: number): { ret: number; mapped: number } {
    for (let n = 0; n < count; n++) {
      const ret = this.mapOne(iova + n * size, pa + n * size, size, prot);
      if (ret) return { ret, mapped: n * size };
    }
    return { ret: 0, mapped: count * size };
  }

  private mapOne(iova: number, pa: number, size: number, prot: number): number {
    const i = ExpectedV7s.i1(iova);
    if (size >= SZ_1M) {
      const n = size / SZ_1M;
      // A table under the new block goes (whatever it holds); a leaf is the caller's bug.
      for (let k = 0; k < n; k++) {
        const e = this.l1[i + k]!;
        if (e?.kind === 'table') {
          note('block over a table');
          this.l1[i + k] = null;
        } else if (e) {
          note('map -EEXIST');
          return -EEXIST;
        }
      }
      for (let k = 0; k < n; k++) this.l1[i + k] = { kind: n > 1 ? 'supersection' : 'section', base: pa, prot };
      return 0;
    }
    let t = this.l1[i]!;
    if (t === null) t = this.l1[i] = { kind: 'table', l2: new Array<Leaf | null>(256).fill(null) };
    if (t.kind !== 'table') return -EEXIST;
    const j = ExpectedV7s.i2(iova);
    const n = size / SZ_4K;
    for (let k = 0; k < n; k++) if (t.l2[j + k]) return -EEXIST;
    for (let k = 0; k < n; k++) t.l2[j + k] = { kind: n > 1 ? 'large' : 'small', base: pa, prot };
    return 0;
  }

  /** unmap_pages: pgcount pages, stopping at the first that unmaps nothing. */
  unmap(iova: number, size: number, count: number): number {
    let done = 0;
    for (let n = 0; n < count; n++) {
      const r = this.unmapOne(iova + n * size, size);
      if (!r) break;
      done += r;
    }
    return done;
  }

  private unmapOne(iova: number, size: number): number {
    const i = ExpectedV7s.i1(iova);
    if (size >= SZ_1M) {
      const n = size / SZ_1M;
      for (let k = 0; k < n; k++) if (!this.l1[i + k]) return 0;
      if (n === 1 && this.l1[i]!.kind === 'supersection') {
        if (this.variant === 'refuse') return 0;
        this.splitSupersection(i);
      }
      for (let k = 0; k < n; k++) this.l1[i + k] = null;
      return size;
    }
    let e = this.l1[i]!;
    if (!e) return 0;
    if (e.kind === 'supersection') {
      if (this.variant === 'refuse') return 0;
      this.splitSupersection(i);
      // The split-era code carries on with the group's first section, not this one: its
      // compare-and-swap on this entry fails, the unmap returns 0.
      if (this.variant === 'split-upstream' && i % 16 !== 0) return 0;
      e = this.l1[i]!;
    }
    if (e.kind === 'section') {
      if (this.variant === 'refuse') return 0;
      this.splitSection(i, e, iova, size);
      return size;
    }
    if (e.kind !== 'table') throw new Error('unreachable');
    const j = ExpectedV7s.i2(iova);
    const n = size / SZ_4K;
    for (let k = 0; k < n; k++) if (!e.l2[j + k]) return 0;
    const first = e.l2[j]!;
    if (n === 1 && first.kind === 'large') {
      note('large page split');
      if (this.variant === 'refuse') return 0;
      const g = j - (j % 16);
      for (let k = 0; k < 16; k++) e.l2[g + k] = { kind: 'small', base: first.base + k * SZ_4K, prot: first.prot };
    }
    for (let k = 0; k < n; k++) e.l2[j + k] = null;
    return size;
  }

  /** A supersection becomes 16 sections, each at its own MiB of the output range. */
  private splitSupersection(i: number): void {
    note('supersection split');
    const g = i - (i % 16);
    const s = this.l1[g] as Leaf;
    for (let k = 0; k < 16; k++) this.l1[g + k] = { kind: 'section', base: s.base + k * SZ_1M, prot: s.prot };
  }

  /**
   * The section becomes an L2 table of pages of the unmap's size, minus the unmapped one. The
   * split-era upstream code put only the offset into the section in them (output address lost).
   */
  private splitSection(i: number, s: Leaf, iova: number, size: number): void {
    note(`section split for ${size / SZ_4K} pages`);
    const l2 = new Array<Leaf | null>(256).fill(null);
    const n = size / SZ_4K;
    const hole = ExpectedV7s.i2(iova);
    const base = this.variant === 'split-upstream' ? 0 : s.base;
    for (let k = 0; k < 256; k += n) {
      if (k === hole) continue;
      for (let m = 0; m < n; m++) l2[k + m] = { kind: n > 1 ? 'large' : 'small', base: base + k * SZ_4K, prot: s.prot };
    }
    this.l1[i] = { kind: 'table', l2 };
  }
}

/* ---------- The run ---------- */

const RAM_BASE = 0x40000000;
const RAM_SIZE = 0x08000000;
const WINDOW = 0x10000000;
const WINDOW_MB = 64;
const SIZES = [SZ_4K, SZ_64K, SZ_1M, SZ_16M];

interface Config {
  quirks: number;
  oas: number;
  coherent: boolean;
  variant: PartialUnmap;
}

interface Op {
  map: boolean;
  size: number;
  slot: number;
  count: number;
  prot: number;
  pa: number;
}

const protArb = fc
  .record({ r: fc.boolean(), w: fc.boolean(), cache: fc.boolean(), noexec: fc.boolean(), mmio: fc.boolean(), priv: fc.boolean() })
  .filter((p) => p.r || p.w)
  .map((p) => (p.r ? IOMMU_READ : 0) | (p.w ? IOMMU_WRITE : 0) | (p.cache ? IOMMU_CACHE : 0) | (p.noexec ? IOMMU_NOEXEC : 0) | (p.mmio ? IOMMU_MMIO : 0) | (p.priv ? IOMMU_PRIV : 0));

/** Slots in 4 KiB units; clustered around the first supersections so that sizes collide. */
const opArb: fc.Arbitrary<Op> = fc.record({
  map: fc.boolean(),
  size: fc.nat(3),
  slot: fc.oneof(fc.nat(0x20), fc.integer({ min: 0xff0, max: 0x1020 }), fc.nat(WINDOW_MB * 256 - 1)),
  count: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 3 })),
  prot: protArb,
  pa: fc.nat(),
});

function run(c: Config, ops: Op[]): number {
  const { bus, alloc, tlb } = recordingEnv(RAM_BASE, RAM_SIZE);
  const cfg: IoPgtableCfg = { quirks: c.quirks, pgsizeBitmap: SZ_4K | SZ_64K | SZ_1M | SZ_16M, ias: 32, oas: c.oas, coherentWalk: c.coherent, tlb };
  const pgt = armV7sAllocPgtable(cfg, { port: busPort(bus, () => {}), alloc, variant: { partialUnmap: c.variant } });
  if (!pgt) throw new Error('v7s refused the config');
  const q: Quirks = { ns: (c.quirks & IO_PGTABLE_QUIRK_ARM_NS) !== 0, noPerms: (c.quirks & IO_PGTABLE_QUIRK_NO_PERMS) !== 0, mtk: (c.quirks & IO_PGTABLE_QUIRK_ARM_MTK_EXT) !== 0 };
  const want = new ExpectedV7s(4096, c.variant);
  // What the IOMMU reads: RAM for a non-coherent walker, the coherent view otherwise.
  const rd = (pa: number): number => bus.devRead32(pa, c.coherent, 'iommu');
  const hx = (v: number): string => `0x${(v >>> 0).toString(16)}`;

  const checkSlots = (from: number, to: number, what: string): void => {
    for (let i = from; i < to; i++) {
      const got = rd(pgt.pgd + i * 4) >>> 0;
      const e = want.l1[i]!;
      if (e === null || e.kind !== 'table') {
        const exp = e === null ? 0 : sectionDesc(e, q);
        if (got !== exp) throw new Error(`after ${what}: L1[${i}] = ${hx(got)}, expected ${hx(exp)}`);
        continue;
      }
      const t = got - (got % 1024);
      if (got - t !== 1 + on(q.ns, 3) || !alloc.live.has(t)) throw new Error(`after ${what}: L1[${i}] = ${hx(got)}, expected a table descriptor to a live table`);
      for (let j = 0; j < 256; j++) {
        const l = e.l2[j]!;
        const g2 = rd(t + j * 4) >>> 0;
        const exp = l === null ? 0 : pageDesc(l, q);
        if (g2 !== exp) throw new Error(`after ${what}: L2[${i}][${j}] = ${hx(g2)}, expected ${hx(exp)}`);
      }
    }
  };
  const checkTables = (what: string): void => {
    if (alloc.live.size !== 1 + want.tables()) throw new Error(`after ${what}: ${alloc.live.size - 1} L2 tables live, expected ${want.tables()}`);
  };

  const winSlot = WINDOW / SZ_1M;
  for (const [n, op] of ops.entries()) {
    const size = SIZES[op.size]!;
    const iova = WINDOW + Math.floor(((op.slot * SZ_4K) % (WINDOW_MB * SZ_1M)) / size) * size;
    let count = op.count;
    while (count > 1 && iova + count * size > WINDOW + WINDOW_MB * SZ_1M) count--;
    const span = size * count;
    const paSpace = 2 ** c.oas - 0x80000000;
    const pa = 0x80000000 + Math.floor((op.pa % (paSpace - span)) / size) * size;
    const what = `#${n} ${op.map ? `map ${hx(iova)} -> ${pa.toString(16)}` : `unmap ${hx(iova)}`} ${count} x ${hx(size)}`;
    if (op.map) {
      const exp = want.map(iova, pa, size, count, op.prot);
      const got = runOp(pgt.mapPages(iova, pa, size, count, op.prot, 'GFP_ATOMIC'));
      if (got.ret !== exp.ret || got.mapped !== exp.mapped) throw new Error(`${what}: returned ${JSON.stringify(got)}, expected ${JSON.stringify(exp)}`);
    } else {
      const exp = want.unmap(iova, size, count);
      const got = runOp(pgt.unmapPages(iova, size, count, null));
      if (got !== exp) throw new Error(`${what}: returned ${hx(got)}, expected ${hx(exp)}`);
    }
    // The 16 MiB groups the operation touched (a split reaches the whole group).
    const lo = Math.floor(iova / SZ_16M) * 16;
    checkSlots(lo, Math.min(4096, Math.ceil((iova + span) / SZ_16M) * 16), what);
    checkTables(what);
    if (n % 32 === 31) checkSlots(winSlot, winSlot + WINDOW_MB, what);
  }
  checkSlots(0, 4096, 'the last operation');
  runOp(pgt.free());
  if (alloc.live.size) throw new Error(`free left ${alloc.live.size} tables`);
  return ops.length;
}

const MTK_QUIRKS = IO_PGTABLE_QUIRK_ARM_NS | IO_PGTABLE_QUIRK_NO_PERMS | IO_PGTABLE_QUIRK_ARM_MTK_EXT;
const CONFIGS: [string, Config, number][] = [
  ['non-coherent, split', { quirks: 0, oas: 32, coherent: false, variant: 'split' }, 120],
  ['coherent, NS, refuse', { quirks: IO_PGTABLE_QUIRK_ARM_NS, oas: 32, coherent: true, variant: 'refuse' }, 50],
  ['MediaTek 35-bit PA, split', { quirks: MTK_QUIRKS, oas: 35, coherent: false, variant: 'split' }, 50],
  ['split-upstream (output address lost)', { quirks: 0, oas: 32, coherent: true, variant: 'split-upstream' }, 40],
];
describeBitExact('io-pgtable-arm-v7s: descriptors bit for bit against the architecture', CONFIGS, opArb, run, seen, ['map -EEXIST', 'block over a table', 'supersection split', 'section split for 1 pages', 'section split for 16 pages', 'large page split']);
