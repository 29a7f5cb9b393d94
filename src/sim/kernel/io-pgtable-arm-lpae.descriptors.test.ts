/**
 * Bit-exact property test of the LPAE stage-1 format: long random map/unmap sequences (every page
 * and block size of the 4 KiB, 16 KiB and 64 KiB granules, partial unmaps, overlaps) against an
 * expected table tree built here from the VMSAv8-64 descriptor layout (ARM DDI 0487, D8.3) and the
 * io-pgtable API contract, not from the format's code. After every operation the return value must
 * match and the entries the operation covers must hold exactly the expected 64-bit descriptors;
 * every 64 operations and at the end, the whole tree. Table descriptors are compared with their
 * software-defined bits 58:55 masked (the walker ignores them; Linux keeps its SW_SYNC flag there).
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
  IO_PGTABLE_QUIRK_ARM_NS,
  SZ_16K,
  SZ_1G,
  SZ_2M,
  SZ_32M,
  SZ_4K,
  SZ_512M,
  SZ_64K,
  type IoPgtableCfg,
  type PartialUnmap,
} from './io-pgtable';
import { armLpaeS1AllocPgtable } from './io-pgtable-arm-lpae';
import { describeBitExact } from './io-pgtable-descriptor-suite';
import { recordingEnv } from './io-pgtable-testkit';
import { busPort } from './port';

/* ---------- Geometry and descriptors ---------- */

interface Geo {
  granule: number;
  /** Bits resolved per level, and the levels used. */
  bpl: number;
  startLevel: number;
  pgdEntries: number;
}

function geo(granule: number, ias: number): Geo {
  const shift = Math.log2(granule);
  const bpl = shift - 3;
  const levels = Math.ceil((ias - shift) / bpl);
  return { granule, bpl, startLevel: 4 - levels, pgdEntries: 2 ** (ias - shift - bpl * (levels - 1)) };
}

const blockSize = (g: Geo, lvl: number): number => 2 ** ((3 - lvl) * g.bpl + Math.log2(g.granule));
const entries = (g: Geo, lvl: number): number => (lvl === g.startLevel ? g.pgdEntries : 2 ** g.bpl);

interface Leaf {
  kind: 'leaf';
  base: number;
  prot: number;
}
interface Table {
  kind: 'table';
  e: (Entry | null)[];
}
type Entry = Leaf | Table;

/** A 64-bit descriptor as two 32-bit halves. */
interface Desc {
  lo: number;
  hi: number;
}

/**
 * D8.3 block (bits 1:0 = 0b01, levels above 3) and page (0b11 at level 3) descriptors, with the
 * attributes Linux chooses: AttrIndx 2 (device) for MMIO, 1 (WB) for cacheable, else 0; NS with
 * the quirk; AP[1] (unprivileged) unless PRIV; AP[2] (read-only) if readable but not writable;
 * SH inner-shareable if cacheable else outer; AF and nG always; PXN and UXN for NOEXEC.
 */
function leafDesc(l: Leaf, lvl: number, ns: boolean): Desc {
  const p = l.prot;
  const attrIdx = p & IOMMU_MMIO ? 2 : p & IOMMU_CACHE ? 1 : 0;
  const lo =
    (lvl === 3 ? 3 : 1) +
    attrIdx * 4 +
    (ns ? 0x20 : 0) +
    (p & IOMMU_PRIV ? 0 : 0x40) +
    (p & IOMMU_READ && !(p & IOMMU_WRITE) ? 0x80 : 0) +
    (p & IOMMU_CACHE ? 3 : 2) * 0x100 +
    0x400 +
    0x800 +
    (l.base % 2 ** 32);
  const hi = Math.floor(l.base / 2 ** 32) + (p & IOMMU_NOEXEC ? 0x600000 : 0);
  return { lo: lo >>> 0, hi };
}

/* ---------- Expected tree: the io-pgtable contract ---------- */

/** Outcomes the generator reached, over all runs: the interesting cases must come up. */
const seen = new Map<string, number>();
const note = (k: string): void => void seen.set(k, (seen.get(k) ?? 0) + 1);

class ExpectedLpae {
  readonly root: Table;

  constructor(
    readonly g: Geo,
    private readonly variant: PartialUnmap,
  ) {
    this.root = { kind: 'table', e: new Array<Entry | null>(g.pgdEntries).fill(null) };
  }

  idx(iova: number, lvl: number): number {
    return Math.floor(iova / blockSize(this.g, lvl)) % entries(this.g, lvl);
  }

  tables(t: Table = this.root): number {
    let n = 0;
    for (const e of t.e) if (e?.kind === 'table') n += 1 + this.tables(e);
    return n;
  }

  private newTable(lvl: number): Table {
    return { kind: 'table', e: new Array<Entry | null>(entries(this.g, lvl)).fill(null) };
  }

  /** One map_pages call: up to the end of the table at the page's level. */
  map(iova: number, pa: number, size: number, count: number, prot: number): { ret: number; mapped: number } {
    let t = this.root;
    for (let lvl = this.g.startLevel; ; lvl++) {
      const i = this.idx(iova, lvl);
      if (blockSize(this.g, lvl) === size) {
        const num = Math.min(count, t.e.length - i);
        // A table where a leaf goes is dropped (whatever it holds); a leaf is the caller's bug.
        for (let k = 0; k < num; k++) {
          const e = t.e[i + k]!;
          if (e?.kind === 'leaf') {
            note('map -EEXIST');
            return { ret: -EEXIST, mapped: 0 };
          }
          if (e) {
            note('block over a table');
            t.e[i + k] = null;
          }
        }
        for (let k = 0; k < num; k++) t.e[i + k] = { kind: 'leaf', base: pa + k * size, prot };
        return { ret: 0, mapped: num * size };
      }
      let e = t.e[i]!;
      if (e === null) e = t.e[i] = this.newTable(lvl + 1);
      if (e.kind === 'leaf') return { ret: -EEXIST, mapped: 0 };
      t = e;
    }
  }

  /** One unmap_pages call. */
  unmap(iova: number, size: number, count: number): number {
    return this.unmapIn(this.root, this.g.startLevel, iova, size, count);
  }

  private unmapIn(t: Table, lvl: number, iova: number, size: number, count: number): number {
    const i = this.idx(iova, lvl);
    const e = t.e[i]!;
    if (e === null) return 0;
    if (blockSize(this.g, lvl) === size) {
      const num = Math.min(count, t.e.length - i);
      let k = 0;
      for (; k < num && t.e[i + k]; k++) {
        if (t.e[i + k]!.kind === 'table') note('block-sized unmap of a table');
        t.e[i + k] = null;
      }
      if (k && k < num) note('unmap stops at a hole');
      return k * size;
    }
    if (e.kind === 'table') return this.unmapIn(e, lvl + 1, iova, size, count);
    note(this.variant === 'refuse' ? 'partial unmap refused' : `split at level ${lvl}`);
    if (this.variant === 'refuse') return 0;
    // The block becomes a next-level table replicating it; the unmap goes on in there.
    const child = this.newTable(lvl + 1);
    const sub = blockSize(this.g, lvl + 1);
    for (let k = 0; k < child.e.length; k++) child.e[k] = { kind: 'leaf', base: e.base + k * sub, prot: e.prot };
    t.e[i] = child;
    return this.unmapIn(child, lvl + 1, iova, size, count);
  }
}

/* ---------- The run ---------- */

const RAM_BASE = 0x40000000;
const RAM_SIZE = 0x10000000;

interface Config {
  granule: number;
  sizes: number[];
  ias: number;
  ns: boolean;
  coherent: boolean;
  variant: PartialUnmap;
}

interface Op {
  map: boolean;
  size: number;
  /** Position in the IOVA window, in 1/2^20 of it (then aligned). */
  at: number;
  /** Nudge by a few granules, so that neighbours of block boundaries come up. */
  nudge: number;
  count: number;
  prot: number;
  pa: number;
}

const protArb = fc
  .record({ r: fc.boolean(), w: fc.boolean(), cache: fc.boolean(), noexec: fc.boolean(), mmio: fc.boolean(), priv: fc.boolean() })
  .filter((p) => p.r || p.w)
  .map((p) => (p.r ? IOMMU_READ : 0) | (p.w ? IOMMU_WRITE : 0) | (p.cache ? IOMMU_CACHE : 0) | (p.noexec ? IOMMU_NOEXEC : 0) | (p.mmio ? IOMMU_MMIO : 0) | (p.priv ? IOMMU_PRIV : 0));

const opArb: fc.Arbitrary<Op> = fc.record({
  map: fc.boolean(),
  size: fc.nat(2),
  at: fc.oneof(fc.constantFrom(0, 1 << 18, 1 << 19, 3 << 18), fc.nat((1 << 20) - 1)),
  nudge: fc.integer({ min: -3, max: 3 }),
  count: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 4 })),
  prot: protArb,
  pa: fc.nat(),
});

const TWO32 = 2 ** 32;

function run(c: Config, ops: Op[]): number {
  const { bus, alloc, tlb } = recordingEnv(RAM_BASE, RAM_SIZE);
  const cfg: IoPgtableCfg = { quirks: c.ns ? IO_PGTABLE_QUIRK_ARM_NS : 0, pgsizeBitmap: c.sizes.reduce((a, b) => a + b, 0), ias: c.ias, oas: 40, coherentWalk: c.coherent, tlb };
  const pgt = armLpaeS1AllocPgtable(cfg, { port: busPort(bus, () => {}), alloc, variant: { partialUnmap: c.variant } });
  if (!pgt) throw new Error('lpae refused the config');
  const g = geo(c.granule, c.ias);
  const want = new ExpectedLpae(g, c.variant);
  const rd = (pa: number): Desc => ({ lo: bus.devRead32(pa, c.coherent, 'smmu') >>> 0, hi: bus.devRead32(pa + 4, c.coherent, 'smmu') >>> 0 });
  const hx = (v: number): string => `0x${v.toString(16)}`;
  const dx = (d: Desc): string => `0x${d.hi.toString(16)}_${d.lo.toString(16).padStart(8, '0')}`;

  /** Compare the entries of table `pa` (expected `t`, level `lvl`, first IOVA `va`) that meet [from, to). */
  const check = (t: Table, pa: number, lvl: number, va: number, from: number, to: number, what: string): void => {
    const bs = blockSize(g, lvl);
    const first = Math.max(0, Math.floor((from - va) / bs));
    const last = Math.min(t.e.length, Math.ceil((to - va) / bs));
    for (let k = first; k < last; k++) {
      const e = t.e[k]!;
      const got = rd(pa + k * 8);
      const at = `L${lvl}[${k}] of ${hx(pa)} (iova ${hx(va + k * bs)})`;
      if (e?.kind === 'table') {
        const addr = (got.hi & 0xffff) * TWO32 + (got.lo - (got.lo % 4096));
        const attrs = { lo: got.lo % 4096, hi: got.hi - (got.hi & 0xffff) - (got.hi & 0x07800000) };
        if (attrs.lo !== 3 || attrs.hi !== (c.ns ? 0x80000000 : 0) || !alloc.live.has(addr)) throw new Error(`after ${what}: ${at} = ${dx(got)}, expected a table descriptor to a live table`);
        check(e, addr, lvl + 1, va + k * bs, from, to, what);
        continue;
      }
      const exp = e === null ? { lo: 0, hi: 0 } : leafDesc(e, lvl, c.ns);
      if (got.lo !== exp.lo || got.hi !== exp.hi) throw new Error(`after ${what}: ${at} = ${dx(got)}, expected ${dx(exp)}`);
    }
  };

  const space = 2 ** c.ias;
  // Eight of the largest blocks: sizes collide there, and the tree stays small enough to compare whole.
  const window = Math.min(space, 8 * c.sizes[c.sizes.length - 1]!);
  for (const [n, op] of ops.entries()) {
    const size = c.sizes[op.size % c.sizes.length]!;
    const raw = Math.floor((op.at / (1 << 20)) * window) + op.nudge * c.granule;
    const iova = Math.min(Math.max(0, Math.floor(raw / size) * size), space - size);
    let count = op.count;
    while (count > 1 && iova + count * size > space) count--;
    const span = count * size;
    const pa = Math.floor((op.pa * 4096) % (2 ** 40 - span) / size) * size;
    const what = `#${n} ${op.map ? `map ${hx(iova)} -> ${hx(pa)}` : `unmap ${hx(iova)}`} ${count} x ${hx(size)}`;
    let end: number;
    if (op.map) {
      const exp = want.map(iova, pa, size, count, op.prot);
      const got = runOp(pgt.mapPages(iova, pa, size, count, op.prot, 'GFP_ATOMIC'));
      if (got.ret !== exp.ret || got.mapped !== exp.mapped) throw new Error(`${what}: returned ${JSON.stringify(got)}, expected ${JSON.stringify(exp)}`);
      end = iova + Math.max(got.mapped, size);
    } else {
      const exp = want.unmap(iova, size, count);
      const got = runOp(pgt.unmapPages(iova, size, count, null));
      if (got !== exp) throw new Error(`${what}: returned ${hx(got)}, expected ${hx(exp)}`);
      end = iova + span;
    }
    // The operation's entries now; the rest of a split block, and anything written astray, with the whole tree every 64.
    check(want.root, pgt.pgd, g.startLevel, 0, iova, end, what);
    if (alloc.live.size !== 1 + want.tables()) throw new Error(`after ${what}: ${alloc.live.size - 1} tables live, expected ${want.tables()}`);
    if (n % 64 === 63) check(want.root, pgt.pgd, g.startLevel, 0, 0, space, what);
  }
  check(want.root, pgt.pgd, g.startLevel, 0, 0, space, 'the last operation');
  runOp(pgt.free());
  if (alloc.live.size) throw new Error(`free left ${alloc.live.size} tables`);
  return ops.length;
}

const G4K = { granule: SZ_4K, sizes: [SZ_4K, SZ_2M, SZ_1G] };
const G16K = { granule: SZ_16K, sizes: [SZ_16K, SZ_32M] };
const G64K = { granule: SZ_64K, sizes: [SZ_64K, SZ_512M] };
const CONFIGS: [string, Config, number][] = [
  ['4 KiB granule, 32-bit IAS, non-coherent, split', { ...G4K, ias: 32, ns: false, coherent: false, variant: 'split' }, 100],
  ['4 KiB granule, 39-bit IAS, coherent, NS, refuse', { ...G4K, ias: 39, ns: true, coherent: true, variant: 'refuse' }, 70],
  ['16 KiB granule, 36-bit IAS, non-coherent, split', { ...G16K, ias: 36, ns: false, coherent: false, variant: 'split' }, 60],
  ['64 KiB granule, 32-bit IAS, coherent, split', { ...G64K, ias: 32, ns: false, coherent: true, variant: 'split' }, 20],
];
describeBitExact('io-pgtable-arm-lpae: descriptors bit for bit against the architecture', CONFIGS, opArb, run, seen, ['map -EEXIST', 'block over a table', 'block-sized unmap of a table', 'unmap stops at a hole', 'partial unmap refused', 'split at level 1', 'split at level 2']);
