/**
 * Page tables as the IOMMU's walker sees them: per format (Allwinner H6 DT/PT, Rockchip DTE/PTE v1
 * and v2, ARM v7s with the MediaTek PA extension, ARM LPAE stage 1), pure functions that read table
 * memory the way the hardware does (RAM for a non-coherent walker, RAM plus dirty CPU lines for a
 * coherent one) and decode each descriptor by the hardware model's rules, not the driver's.
 *
 * Looking changes nothing: no cache fills, no findings, no time. Where the CPU cache holds another,
 * un-cleaned value for a descriptor, both are given, since that difference is the bug (P6). Every
 * table's memory is checked against the page allocator's owner tags: a table the walker reaches
 * that the domain does not own is a freed or reused page (use-after-free, P7).
 */
import { RK_PTE_READABLE, RK_PTE_WRITABLE, RK_RESERVED, RK_VALID, rkDecodeAddr, type RkVersion } from '../hw/rockchip-format';
import { smmuGeometry } from '../hw/arm-smmu';
import { RK_STATUS } from '../hw/rockchip-regs';
import { IO_PGTABLE_QUIRK_ARM_MTK_EXT, IO_PGTABLE_QUIRK_NO_PERMS, type IoPgtableOps } from '../kernel/io-pgtable';
import { armLpaeGeometry, armLpaeLvlShift } from '../kernel/io-pgtable-arm-lpae';
import { armV7sIopteToPaddr } from '../kernel/io-pgtable-arm-v7s';
import { isPaging, type IommuDomain } from '../kernel/iommu-core';
import { ownerLabel, type PageAllocator } from '../kernel/page-alloc';
import type { Soc } from '../soc';
import type { DomainInfo, IovaWalk, PageOwnerInfo, PtEntry, PtEntryKind, PtField, PtTable, TableRef, WalkStep } from './page-tables-types';

const TWO32 = 2 ** 32;
const SZ_4K = 0x1000;

const hx = (n: number): string => `0x${n.toString(16)}`;
const rawHex = (lo: number, hi: number, size: 4 | 8): string =>
  size === 4 ? `0x${lo.toString(16).padStart(8, '0')}` : `0x${hi.toString(16).padStart(8, '0')}${lo.toString(16).padStart(8, '0')}`;

function sizeLabel(n: number): string {
  for (const [unit, div] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) if (n >= div && n % div === 0) return `${n / div} ${unit}`;
  return `${n} B`;
}

// ---- table memory --------------------------------------------------------------------------

/** Table memory as one IOMMU's walker reads it. */
export interface TableMemory {
  /** The 32-bit word the walker reads at pa; null off RAM (the walk would end in a bus error). */
  word(pa: number): number | null;
  /** The CPU's value of that word when it differs from what the walker reads (not cleaned); else null. */
  cpuWord(pa: number): number | null;
}

export function tableMemory(soc: Soc, coherent: boolean): TableMemory {
  const peek32 = (pa: number): number => {
    const b = soc.cache.peek(pa, 4);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  };
  return {
    word: (pa) => {
      if (!soc.ram.contains(pa, 4)) return null;
      // A coherent walker snoops: it sees the CPU's dirty lines.
      return coherent && soc.cache.isDirty(pa) ? peek32(pa) : soc.ram.read32(pa);
    },
    cpuWord: (pa) => {
      if (coherent || !soc.ram.contains(pa, 4) || !soc.cache.isDirty(pa)) return null;
      const cpu = peek32(pa);
      return cpu === soc.ram.read32(pa) ? null : cpu;
    },
  };
}

/** Who holds the memory of a table at pa, when it is not the domain; null when the domain owns it. */
export function tableOwnerProblem(pages: PageAllocator, pa: number, domain: number): string | null {
  const a = pages.allocationAt(pa);
  if (a) {
    if (a.owner.kind === 'pgtable' && a.owner.domain === domain) return null;
    return `${hx(pa)} belongs to ${ownerLabel(a.owner)}`;
  }
  const f = pages.lastFreed(pa);
  if (f) return `${hx(pa)} is free memory (last held by ${ownerLabel(f.owner)}, freed at ${f.time})`;
  const managed = pages.ranges.some((r) => pa >= r.base && pa < r.base + r.size);
  return managed ? `${hx(pa)} was never allocated` : `${hx(pa)} is not memory the kernel allocated`;
}

// ---- formats -------------------------------------------------------------------------------

interface Decoded {
  kind: PtEntryKind;
  /** Next table (kind 'table') or the start of the page or block (leaves). */
  out?: number;
  size?: number;
  perms?: string;
  fields: PtField[];
  meaning: string;
}

/** One table format as its hardware walker reads it. */
export interface PtFormat {
  label: string;
  entrySize: 4 | 8;
  rootLevel: number;
  /** Descriptors in a table of this level. */
  entries(level: number): number;
  /** log2 of the IOVA span one descriptor of this level translates. */
  shift(level: number): number;
  /** The walker translates IOVAs in [0, iovaLimit). */
  iovaLimit: number;
  /** Decode a descriptor (hi is 0 for 32-bit formats). */
  decode(lo: number, hi: number, level: number): Decoded;
  /** Upper-word bits the walker ignores (software bits): a CPU copy differing only there is not shown. */
  ignoredHi: number;
}

const invalid = (meaning: string, fields: PtField[] = []): Decoded => ({ kind: 'invalid', fields, meaning });
const f = (name: string, value: string | number): PtField => ({ name, value: String(value) });

/** The H6 driver's ACI assignment (§1.4): the DM_AUT_CTRL bits it programs for each index. */
const H6_ACI: Record<number, { name: string; perms: string }> = {
  1: { name: 'NONE', perms: 'none' },
  2: { name: 'RD', perms: 'R' },
  3: { name: 'WR', perms: 'W' },
  4: { name: 'RD_WR', perms: 'RW' },
};

/** Allwinner H6 (§1.5): DT of 4096 DTEs (bits 1:0 = 01, PT at 31:10), PTs of 256 PTEs (bit 1 valid). */
export const H6_FORMAT: PtFormat = {
  label: 'sun50i-h6 DT/PT',
  entrySize: 4,
  rootLevel: 1,
  entries: (l) => (l === 1 ? 4096 : 256),
  shift: (l) => (l === 1 ? 20 : 12),
  iovaLimit: TWO32,
  ignoredHi: 0,
  decode(v, _hi, level) {
    if (level === 1) {
      if ((v & 3) !== 1) return invalid(`bits 1:0 = ${(v & 3).toString(2).padStart(2, '0')}: not a DTE`);
      const pt = (v & 0xfffffc00) >>> 0;
      const fields = [f('PT', hx(pt))];
      if (v & 0x3fc) fields.push(f('reserved 9:2', hx(v & 0x3fc)));
      return { kind: 'table', out: pt, fields, meaning: `DTE → PT at ${hx(pt)}` };
    }
    if ((v & 2) === 0) return invalid('bit 1 (valid) clear');
    const pa = (v & 0xfffff000) >>> 0;
    const aci = (v >>> 4) & 0xf;
    const a = H6_ACI[aci];
    const fields = [f('PA', hx(pa)), f('ACI', a ? `${aci} (${a.name})` : `${aci}`)];
    if (v & 0xf0d) fields.push(f('reserved', hx(v & 0xf0d)));
    const perms = a?.perms ?? `ACI ${aci}`;
    return { kind: 'page', out: pa, size: SZ_4K, perms, fields, meaning: `4 KiB page → ${hx(pa)}, ACI ${aci}${a ? ` (${a.name})` : ''}` };
  },
};

/** Rockchip (§2.4): DT and PTs of 1024 entries, bit 0 valid; v2 packs PA[39:32] into bits 11:4. */
export function rockchipFormat(version: RkVersion): PtFormat {
  return {
    label: `rockchip ${version} DTE/PTE`,
    entrySize: 4,
    rootLevel: 1,
    entries: () => 1024,
    shift: (l) => (l === 1 ? 22 : 12),
    iovaLimit: TWO32,
    ignoredHi: 0,
    decode(v, _hi, level) {
      if ((v & RK_VALID) === 0) return invalid('bit 0 (valid) clear');
      const addr = rkDecodeAddr(version, v);
      const reserved = v & (level === 1 ? RK_RESERVED[version].dte : RK_RESERVED[version].pte);
      const fields = [f(level === 1 ? 'PT' : 'PA', hx(addr))];
      if (reserved) fields.push(f('reserved', hx(reserved)));
      if (level === 1) return { kind: 'table', out: addr, fields, meaning: `DTE → PT at ${hx(addr)}` };
      const perms = `${v & RK_PTE_READABLE ? 'R' : ''}${v & RK_PTE_WRITABLE ? 'W' : ''}` || 'none';
      fields.push(f('perm', perms));
      if (version === 'v1' && v & 8) fields.push(f('cache override', hx((v >>> 4) & 0x1f)));
      if (version === 'v2' && v & 8) fields.push(f('security', 1));
      return { kind: 'page', out: addr, size: SZ_4K, perms, fields, meaning: `4 KiB page → ${hx(addr)} ${perms}` };
    },
  };
}

/**
 * ARM short descriptor (§3): L1 sections (16 MiB supersections with bit 18) or L2 pointers, L2 small
 * and large pages. With the MediaTek extension PA bits 32..34 sit in bits 9/4/5 and the M4U grants
 * read and write whatever AP says (the hardware model's rule).
 */
export function v7sFormat(quirks: number, ias: number): PtFormat {
  const mtk = (quirks & IO_PGTABLE_QUIRK_ARM_MTK_EXT) !== 0;
  const ap = !mtk && (quirks & IO_PGTABLE_QUIRK_NO_PERMS) === 0;
  return {
    label: `arm-v7s${mtk ? ' + MTK PA ext' : ''}, ${ias}-bit IOVA`,
    entrySize: 4,
    rootLevel: 1,
    entries: (l) => (l === 1 ? 2 ** (ias - 20) : 256),
    shift: (l) => (l === 1 ? 20 : 12),
    iovaLimit: 2 ** ias,
    ignoredHi: 0,
    decode(v, _hi, level) {
      const type = v & 3;
      if (type === 0) return invalid('bits 1:0 = 00: fault');
      if (level === 1 && type === 1) {
        const pt = (v & 0xfffffc00) >>> 0;
        const fields = [f('L2', hx(pt))];
        if (v & (1 << 3)) fields.push(f('NS', 1));
        return { kind: 'table', out: pt, fields, meaning: `L1 → L2 table at ${hx(pt)}` };
      }
      let size: number;
      let what: string;
      let xn: boolean;
      let tex: number;
      if (level === 1) {
        const sup = (v & (1 << 18)) !== 0;
        size = sup ? 0x100_0000 : 0x10_0000;
        what = sup ? 'supersection' : 'section';
        xn = !mtk && (v & (1 << 4)) !== 0;
        tex = (v >>> 12) & 7;
      } else if (type === 1) {
        size = 0x1_0000;
        what = 'large page';
        xn = (v & (1 << 15)) !== 0;
        tex = (v >>> 12) & 7;
      } else {
        size = SZ_4K;
        what = 'small page';
        xn = (v & 1) !== 0;
        tex = (v >>> 6) & 7;
      }
      const pa = armV7sIopteToPaddr(v, level, quirks);
      const attr = v >>> (level === 1 ? 10 : 4);
      const fields = [f('PA', hx(pa))];
      let perms = 'RW';
      if (mtk) fields.push(f('PA[34:32]', Math.floor(pa / TWO32)));
      if (ap) {
        const af = (attr & 1) !== 0;
        const unpriv = (attr & 2) !== 0;
        const ro = (attr & 0x20) !== 0;
        perms = !af || !unpriv ? 'none' : ro ? 'R' : 'RW';
        fields.push(f('AF', af ? 1 : 0), f('AP', `${ro ? 'RO' : 'RW'}${unpriv ? '' : ', priv only'}`));
      }
      fields.push(f('TEX', tex), f('B', v & 4 ? 1 : 0), f('C', v & 8 ? 1 : 0), f('S', attr & 0x40 ? 1 : 0), f('nG', attr & 0x80 ? 1 : 0));
      if (xn) fields.push(f('XN', 1));
      if (level === 1 && v & (1 << 19)) fields.push(f('NS', 1));
      return { kind: level === 1 ? 'block' : 'page', out: pa, size, perms, fields, meaning: `${sizeLabel(size)} ${what} → ${hx(pa)} ${perms}` };
    },
  };
}

const MAIR_NAMES = ['NC', 'WB-RWA', 'device nGnRE', 'inner NC / outer WB'];
const SH_NAMES = ['non-shareable', 'reserved', 'outer', 'inner'];

/**
 * ARM LPAE stage 1 (§4): 8-byte descriptors, blocks above the last level, pages at level 3. Bits 58:55
 * are for software (io-pgtable keeps SW_SYNC there) and ignored by the walker.
 */
export function lpaeFormat(granule: number, ias: number): PtFormat {
  const g = armLpaeGeometry(granule, ias);
  const blockAllowed = (l: number): boolean => l >= 1 && (granule === SZ_4K || l === 2);
  return {
    label: `arm-lpae ${granule / 1024}K, ${ias}-bit IOVA`,
    entrySize: 8,
    rootLevel: g.startLevel,
    entries: (l) => 2 ** (l === g.startLevel ? g.pgdBits : g.bitsPerLevel),
    shift: (l) => armLpaeLvlShift(g, l),
    iovaLimit: 2 ** ias,
    ignoredHi: 0xf << 23,
    decode(lo, hi, level) {
      if ((lo & 1) === 0) return invalid('bit 0 (valid) clear');
      const addr = ((lo & ~(granule - 1)) >>> 0) + (hi & 0xffff) * TWO32;
      const sw = (hi >>> 23) & 1;
      if (level < 3 && lo & 2) {
        const fields = [f('next', hx(addr))];
        if (hi >>> 31) fields.push(f('NSTable', 1));
        if (sw) fields.push(f('SW_SYNC', 1));
        return { kind: 'table', out: addr, fields, meaning: `L${level} table → L${level + 1} at ${hx(addr)}` };
      }
      if (level === 3 && (lo & 2) === 0) return { kind: 'fault', fields: [], meaning: 'type 01 at level 3 is reserved: translation fault' };
      if (level < 3 && !blockAllowed(level)) return { kind: 'fault', fields: [], meaning: `no level-${level} blocks with a ${granule / 1024} KiB granule: translation fault` };
      const size = 2 ** armLpaeLvlShift(g, level);
      const pa = addr - (addr % size);
      const af = (lo & (1 << 10)) !== 0;
      const unpriv = (lo & (1 << 6)) !== 0;
      const ro = (lo & (1 << 7)) !== 0;
      const attrIdx = (lo >>> 2) & 7;
      const perms = `${unpriv ? '' : 'priv '}${ro ? 'R' : 'RW'}`;
      const fields = [
        f('OA', hx(pa)),
        f('AttrIndx', `${attrIdx}${MAIR_NAMES[attrIdx] ? ` (${MAIR_NAMES[attrIdx]})` : ''}`),
        f('AP', `${ro ? 'RO' : 'RW'}${unpriv ? ', EL0' : ', EL1 only'}`),
        f('SH', SH_NAMES[(lo >>> 8) & 3]!),
        f('AF', af ? 1 : 0),
        f('nG', (lo >>> 11) & 1),
      ];
      if (lo & (1 << 5)) fields.push(f('NS', 1));
      if ((hi >>> 21) & 3) fields.push(f('XN', (hi >>> 21) & 3));
      if ((hi >>> 20) & 1) fields.push(f('Cont', 1));
      if (sw) fields.push(f('SW_SYNC', 1));
      const what = level === 3 ? 'page' : 'block';
      if (!af) return { kind: 'fault', out: pa, size, perms, fields, meaning: `${sizeLabel(size)} ${what} → ${hx(pa)}, AF clear: access flag fault` };
      return { kind: level === 3 ? 'page' : 'block', out: pa, size, perms, fields, meaning: `${sizeLabel(size)} ${what} → ${hx(pa)} ${perms}` };
    },
  };
}

// ---- domains -------------------------------------------------------------------------------

/** A domain's tables: the format, the top-level table and how its IOMMU's walker reads memory. */
export interface DomainTables {
  fmt: PtFormat;
  root: number;
  coherent: boolean;
}

/**
 * The tables of a paging domain. The core keeps no table root (as in Linux, it lives in the driver's
 * per-domain structure), so this reads the drivers' domain state: `dt` for the H6 and Rockchip
 * drivers, the io-pgtable instance for the v7s and LPAE users. null for a domain without tables.
 */
export function domainTables(soc: Soc, d: IommuDomain): DomainTables | null {
  if (!isPaging(d.type) || typeof d.priv !== 'object' || d.priv === null) return null;
  const coherent = soc.config.iommus.find((c) => c.name === d.iommu)?.coherentWalk ?? false;
  const p = d.priv as { dt?: unknown; version?: unknown; iop?: IoPgtableOps };
  switch (d.model) {
    case 'sun50i-h6':
      return typeof p.dt === 'number' ? { fmt: H6_FORMAT, root: p.dt, coherent } : null;
    case 'rockchip':
      return typeof p.dt === 'number' && (p.version === 'v1' || p.version === 'v2') ? { fmt: rockchipFormat(p.version), root: p.dt, coherent } : null;
    case 'mtk-v7s':
      return p.iop ? { fmt: v7sFormat(p.iop.cfg.quirks, p.iop.cfg.ias), root: p.iop.pgd, coherent } : null;
    case 'arm-lpae': {
      if (!p.iop) return null;
      const bm = p.iop.cfg.pgsizeBitmap;
      return { fmt: lpaeFormat(bm & -bm, p.iop.cfg.ias), root: p.iop.pgd, coherent };
    }
  }
  return null;
}

/** Whether the hardware walks tables rooted at root now: root programmed, translation on, powered. */
export function walkedByHardware(soc: Soc, d: IommuDomain, root: number): boolean {
  const model = soc.iommu(d.iommu);
  if (!model.isPowered()) return false;
  const files = model.registerFiles();
  const regs = files[0]!.regs;
  switch (d.model) {
    case 'sun50i-h6':
      return (regs.get('ENABLE') & 1) === 1 && ((regs.get('TTB') & 0xffffc000) >>> 0) === root;
    case 'rockchip': {
      const version = (soc.config.iommus.find((c) => c.name === d.iommu)?.options?.version ?? 'v1') as RkVersion;
      return files.some((w) => (w.regs.get('STATUS') & RK_STATUS.PAGING_ENABLED) !== 0 && rkDecodeAddr(version, w.regs.get('DTE_ADDR')) === root);
    }
    case 'mtk-v7s': {
      if (((regs.get('PT_BASE_ADDR') & 0xffffff80) >>> 0) !== root % TWO32) return false;
      for (let n = 0; n < 8; n++) if (regs.get(`LARB${n}_MMU_EN`) !== 0) return true;
      return false;
    }
    case 'arm-lpae': {
      const cfg = soc.config.iommus.find((c) => c.name === d.iommu)!;
      for (let n = 0; n < smmuGeometry(cfg).contextBanks; n++) {
        const ttbr = ((regs.get(`CB${n}_TTBR0_LO`) & 0xfffffff0) >>> 0) + (regs.get(`CB${n}_TTBR0_HI`) & 0xffff) * TWO32;
        if ((regs.get(`CB${n}_SCTLR`) & 1) !== 0 && ttbr === root) return true;
      }
      return false;
    }
  }
  return false;
}

// ---- tables, walks -------------------------------------------------------------------------

interface Read {
  lo: number;
  hi: number;
  cpu: string | undefined;
}

/** One descriptor as the walker reads it; null off RAM. */
function readDesc(mem: TableMemory, fmt: PtFormat, pa: number): Read | null {
  const lo = mem.word(pa);
  if (lo === null) return null;
  const hi = fmt.entrySize === 8 ? (mem.word(pa + 4) ?? 0) : 0;
  const cLo = mem.cpuWord(pa);
  let cHi = fmt.entrySize === 8 ? mem.cpuWord(pa + 4) : null;
  if (cHi !== null && ((cHi ^ hi) & ~fmt.ignoredHi) === 0) cHi = null;
  const cpu = cLo === null && cHi === null ? undefined : rawHex(cLo ?? lo, cHi ?? hi, fmt.entrySize);
  return { lo, hi, cpu };
}

function entryOf(fmt: PtFormat, ref: TableRef, index: number, r: Read): PtEntry {
  const pa = ref.pa + index * fmt.entrySize;
  const span = 2 ** fmt.shift(ref.level);
  const iova = ref.iova + index * span;
  const d = fmt.decode(r.lo, r.hi, ref.level);
  const e: PtEntry = { index, pa, raw: rawHex(r.lo, r.hi, fmt.entrySize), kind: d.kind, iova, span, fields: d.fields, meaning: d.meaning };
  if (r.cpu !== undefined) e.cpuRaw = r.cpu;
  if (d.perms !== undefined) e.perms = d.perms;
  if (d.kind === 'table' && d.out !== undefined) {
    e.out = d.out;
    e.next = { pa: d.out, level: ref.level + 1, iova };
  } else if (d.out !== undefined && d.size !== undefined) {
    // A replicated v7s entry (large page, supersection) is one of 16: its own IOVA lands further in.
    e.out = d.out + (iova % d.size);
    e.size = d.size;
  }
  return e;
}

/** Read one table: its valid descriptors (every one with all), decoded. */
export function readTable(mem: TableMemory, pages: PageAllocator | null, fmt: PtFormat, domain: number, ref: TableRef, all: boolean): PtTable {
  const n = fmt.entries(ref.level);
  const t: PtTable = { domain, ref, format: fmt.label, entries: n, entrySize: fmt.entrySize, valid: 0, rows: [] };
  const problem = pages ? tableOwnerProblem(pages, ref.pa, domain) : null;
  if (problem) t.ownerProblem = problem;
  for (let i = 0; i < n; i++) {
    const r = readDesc(mem, fmt, ref.pa + i * fmt.entrySize);
    if (r === null) {
      t.notRam = true;
      break;
    }
    const valid = fmt.decode(r.lo, r.hi, ref.level).kind !== 'invalid';
    if (valid) t.valid++;
    // An invalid descriptor with an un-cleaned CPU value is shown: the driver wrote something there.
    if (valid || all || r.cpu !== undefined) t.rows.push(entryOf(fmt, ref, i, r));
  }
  return t;
}

/** The walk of one IOVA, level by level, as the hardware does it (no TLB, no walk cache). */
export function walkIova(mem: TableMemory, pages: PageAllocator | null, fmt: PtFormat, domain: number, root: number, iova: number): IovaWalk {
  const steps: WalkStep[] = [];
  const fail = (fault: string): IovaWalk => ({ domain, iova, steps, result: { ok: false, fault } });
  if (iova < 0 || iova >= fmt.iovaLimit) return fail(`IOVA ${hx(iova)} is beyond the ${Math.log2(fmt.iovaLimit)}-bit input range: address size fault`);
  let table = root;
  for (let level = fmt.rootLevel; ; level++) {
    const shift = fmt.shift(level);
    const index = Math.floor(iova / 2 ** shift) % fmt.entries(level);
    const descPa = table + index * fmt.entrySize;
    const r = readDesc(mem, fmt, descPa);
    const problem = pages ? tableOwnerProblem(pages, table, domain) : null;
    if (r === null) return fail(`L${level} descriptor at ${hx(descPa)} is not in RAM: bus error`);
    const d = fmt.decode(r.lo, r.hi, level);
    const step: WalkStep = { level, tablePa: table, index, descPa, raw: rawHex(r.lo, r.hi, fmt.entrySize), kind: d.kind, meaning: d.meaning };
    if (r.cpu !== undefined) step.cpuRaw = r.cpu;
    if (problem) step.ownerProblem = problem;
    steps.push(step);
    if (d.kind === 'invalid' || d.kind === 'fault') return fail(`L${level}[${index}] at ${hx(descPa)}: ${d.meaning}`);
    if (d.kind === 'table') {
      table = d.out!;
      continue;
    }
    return { domain, iova, steps, result: { ok: true, pa: d.out! + (iova % d.size!), size: d.size!, perms: d.perms ?? 'RW' } };
  }
}

/** Allocations of the page allocator overlapping [pa, pa+len), slab objects one by one (memory view labels). */
export function pageOwnersIn(pages: PageAllocator, pa: number, len: number): PageOwnerInfo[] {
  const end = pa + len;
  return pages
    .list()
    .filter((a) => a.pa < end && a.pa + a.bytes > pa)
    .map((a) => {
      const o = a.owner;
      const info: PageOwnerInfo = { pa: a.pa, bytes: a.bytes, kind: o.kind, label: ownerLabel(o) };
      if (o.kind === 'pgtable') {
        info.domain = o.domain;
        info.level = o.level;
        if (o.iommu !== undefined) info.iommu = o.iommu;
      }
      return info;
    });
}

// ---- the views over a SoC ------------------------------------------------------------------

/** The domain with this id, with its tables; throws for an unknown id or a domain without tables. */
export function tablesOf(soc: Soc, id: number): { d: IommuDomain; t: DomainTables; mem: TableMemory; pages: PageAllocator } {
  const k = soc.bootedKernel;
  const d = k?.core.domain(id);
  if (!k || !d) throw new Error(`no IOMMU domain with id ${id}`);
  const t = domainTables(soc, d);
  if (!t) throw new Error(`domain ${id} (${d.type}) has no page tables`);
  return { d, t, mem: tableMemory(soc, t.coherent), pages: k.pages };
}

/** Every domain of every probed IOMMU (freed ones included); none before the kernel boots. */
export function listDomains(soc: Soc): DomainInfo[] {
  const k = soc.bootedKernel;
  if (!k) return [];
  const groups = k.core.groupList();
  return k.core.iommuNames().flatMap((name) =>
    k.core.domainsOf(name).map((d) => {
      const t = domainTables(soc, d);
      return {
        id: d.id,
        iommu: d.iommu,
        model: d.model,
        type: d.type,
        devices: groups.filter((g) => g.domain === d).flatMap((g) => g.devices),
        defaultFor: groups.filter((g) => g.defaultDomain === d).flatMap((g) => g.devices),
        live: t !== null && walkedByHardware(soc, d, t.root),
        freed: d.freed,
        format: t?.fmt.label ?? null,
        root: t ? { pa: t.root, level: t.fmt.rootLevel, iova: 0 } : null,
        aperture: { start: d.geometry.apertureStart, end: d.geometry.apertureEnd },
        pgsizes: d.pgsizes.slice(),
      };
    }),
  );
}

/** One table of a domain (its root unless a table is given), valid descriptors only unless all. */
export function domainPageTable(soc: Soc, id: number, opts: { table?: TableRef; all?: boolean }): PtTable {
  const { t, mem, pages } = tablesOf(soc, id);
  const ref = opts.table ?? { pa: t.root, level: t.fmt.rootLevel, iova: 0 };
  if (ref.level < t.fmt.rootLevel || ref.level > 3) throw new Error(`${t.fmt.label} has no level ${ref.level}`);
  return readTable(mem, pages, t.fmt, id, ref, opts.all ?? false);
}

export function domainWalk(soc: Soc, id: number, iova: number): IovaWalk {
  const { t, mem, pages } = tablesOf(soc, id);
  return walkIova(mem, pages, t.fmt, id, t.root, iova);
}
