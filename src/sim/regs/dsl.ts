/**
 * The register DSL. A block's registers are declared once, as data: offsets, fields, access kinds,
 * reset values, enumerations, documentation. The same declaration drives the model's behaviour
 * (RegisterFile), the inspector UI and the script API types (describeBlock).
 */
export type Access =
  /** read/write */
  | 'rw'
  /** read-only: writes are ignored; hardware sets it */
  | 'ro'
  /** write-only: reads return 0; the write is a command */
  | 'wo'
  /** write 1 to clear */
  | 'w1c'
  /** write 1 to set (self-clearing command bit): hardware clears it when the command completes */
  | 'sc';

export interface FieldSpec {
  name: string;
  /** Least significant bit. */
  lsb: number;
  width: number;
  access?: Access;
  reset?: number;
  /** Named values, e.g. { ENABLE_PAGING: 0 }. */
  enum?: Record<string, number>;
  doc?: string;
}

export interface RegSpec {
  name: string;
  offset: number;
  /** Default access for fields that do not say, and for the whole register when it has no fields. */
  access?: Access;
  reset?: number;
  fields?: FieldSpec[];
  doc?: string;
  /** Reading has a side effect (clear-on-read, pops a FIFO): inspectors must not read it implicitly. */
  readSideEffect?: boolean;
  /** Bits a write may set without being reported as reserved (defaults to the union of fields). */
  writableMask?: number;
}

export interface BlockSpec {
  /** The hardware's name for the block type, e.g. 'sun50i-h6-iommu'. */
  type: string;
  /** MMIO window size in bytes. */
  size: number;
  regs: RegSpec[];
  doc?: string;
}

/** JSON-serialisable description for the inspector, docs and generated types. */
export interface FieldMeta {
  name: string;
  lsb: number;
  width: number;
  access: Access;
  reset: number;
  enum?: Record<string, number>;
  doc?: string;
}

export interface RegisterMeta {
  name: string;
  offset: number;
  width: 32;
  access: Access;
  reset: number;
  readSideEffect: boolean;
  doc?: string;
  fields: FieldMeta[];
}

export interface BlockMeta {
  type: string;
  size: number;
  doc?: string;
  registers: RegisterMeta[];
}

const mask = (width: number): number => (width >= 32 ? 0xffffffff : ((1 << width) - 1) >>> 0);

/** A validated, indexed block declaration. */
export class BlockDecl {
  readonly byName = new Map<string, RegSpec>();
  readonly byOffset = new Map<number, RegSpec>();
  readonly meta: BlockMeta;

  constructor(readonly spec: BlockSpec) {
    for (const r of spec.regs) {
      if (r.offset % 4 !== 0 || r.offset >= spec.size) throw new Error(`${spec.type}.${r.name}: bad offset 0x${r.offset.toString(16)}`);
      if (this.byName.has(r.name)) throw new Error(`${spec.type}: duplicate register ${r.name}`);
      if (this.byOffset.has(r.offset)) throw new Error(`${spec.type}: ${r.name} overlaps ${this.byOffset.get(r.offset)!.name}`);
      let used = 0;
      for (const f of r.fields ?? []) {
        const m = (mask(f.width) << f.lsb) >>> 0;
        if (f.lsb + f.width > 32 || (used & m) !== 0) throw new Error(`${spec.type}.${r.name}.${f.name}: overlapping or out-of-range field`);
        used |= m;
      }
      this.byName.set(r.name, r);
      this.byOffset.set(r.offset, r);
    }
    this.meta = {
      type: spec.type,
      size: spec.size,
      doc: spec.doc,
      registers: spec.regs.map((r) => ({
        name: r.name,
        offset: r.offset,
        width: 32,
        access: r.access ?? 'rw',
        reset: resetOf(r),
        readSideEffect: r.readSideEffect ?? false,
        doc: r.doc,
        fields: fieldsOf(r).map((f) => ({
          name: f.name,
          lsb: f.lsb,
          width: f.width,
          access: f.access ?? r.access ?? 'rw',
          reset: (resetOf(r) >>> f.lsb) & mask(f.width),
          enum: f.enum,
          doc: f.doc,
        })),
      })),
    };
  }
}

/** Fields of a register; a register declared without fields is one 32-bit field named VALUE. */
function fieldsOf(r: RegSpec): FieldSpec[] {
  return r.fields && r.fields.length > 0 ? r.fields : [{ name: 'VALUE', lsb: 0, width: 32, access: r.access ?? 'rw' }];
}

function resetOf(r: RegSpec): number {
  if (r.reset !== undefined) return r.reset >>> 0;
  let v = 0;
  for (const f of r.fields ?? []) v |= ((f.reset ?? 0) & mask(f.width)) << f.lsb;
  return v >>> 0;
}

export function defineBlock(spec: BlockSpec): BlockDecl {
  return new BlockDecl(spec);
}

/** Per-register precomputed masks: what a bus write does to each bit. */
interface RegPlan {
  spec: RegSpec;
  reset: number;
  rw: number;
  w1c: number;
  sc: number;
  wo: number;
  allowed: number;
}

function plan(r: RegSpec): RegPlan {
  const p: RegPlan = { spec: r, reset: resetOf(r), rw: 0, w1c: 0, sc: 0, wo: 0, allowed: 0 };
  for (const f of fieldsOf(r)) {
    const m = (mask(f.width) << f.lsb) >>> 0;
    const a = f.access ?? r.access ?? 'rw';
    if (a === 'rw') p.rw |= m;
    else if (a === 'w1c') p.w1c |= m;
    else if (a === 'sc') p.sc |= m;
    else if (a === 'wo') p.wo |= m;
    if (a !== 'ro') p.allowed |= m;
  }
  if (r.writableMask !== undefined) p.allowed = r.writableMask;
  p.allowed >>>= 0;
  return p;
}

/** What the model is told about a bus write, after access semantics were applied. */
export interface WriteEvent {
  reg: RegSpec;
  /** The raw value on the bus. */
  written: number;
  /** Register value before and after the write. */
  old: number;
  value: number;
}

export interface RegisterHooks {
  /** Called after a bus write updated the stored value; commands and side effects live here. */
  onWrite?(e: WriteEvent): void;
  /** Supplies the value of a register whose contents the model computes (status, counters). */
  onRead?(reg: RegSpec, stored: number): number;
  /** A write set reserved bits: the model decides how to report it. */
  onReservedWrite?(reg: RegSpec, written: number, reservedBits: number): void;
}

/**
 * The live registers of one block instance: the behaviour the declaration implies. Bus accesses go
 * through read()/write(); the hardware model itself updates status bits with set()/get().
 */
export class RegisterFile {
  private values: Uint32Array;
  private plans: RegPlan[];
  private indexOf = new Map<number, number>();
  private nameIndex = new Map<string, number>();

  constructor(
    readonly decl: BlockDecl,
    private readonly hooks: RegisterHooks = {},
  ) {
    this.plans = decl.spec.regs.map(plan);
    this.values = new Uint32Array(this.plans.length);
    this.plans.forEach((p, i) => {
      this.indexOf.set(p.spec.offset, i);
      this.nameIndex.set(p.spec.name, i);
    });
    this.reset();
  }

  /** All registers to their reset values (power-on, or power domain off). */
  reset(): void {
    this.plans.forEach((p, i) => (this.values[i] = p.reset));
  }

  has(offset: number): boolean {
    return this.indexOf.has(offset);
  }

  private idx(name: string): number {
    const i = this.nameIndex.get(name);
    if (i === undefined) throw new Error(`${this.decl.spec.type}: no register ${name}`);
    return i;
  }

  /** Hardware-side read of the stored value (no side effects). */
  get(name: string): number {
    return this.values[this.idx(name)]!;
  }

  /** A register's slot, for callers that read it on every access: at(slot) is get(name) without the name lookup. */
  slot(name: string): number {
    return this.idx(name);
  }

  at(slot: number): number {
    return this.values[slot]!;
  }

  /** Hardware-side write: bypasses access kinds (status bits, command completion). */
  set(name: string, value: number): void {
    this.values[this.idx(name)] = value >>> 0;
  }

  /** Bus read. Unknown offsets inside the window read as zero. */
  read(offset: number): number {
    const i = this.indexOf.get(offset);
    if (i === undefined) return 0;
    const p = this.plans[i]!;
    const stored = this.values[i]!;
    const v = this.hooks.onRead ? this.hooks.onRead(p.spec, stored) >>> 0 : stored;
    return (v & ~p.wo) >>> 0;
  }

  /** Bus read by name: what a CPU load of that register returns. */
  readByName(name: string): number {
    return this.read(this.plans[this.idx(name)]!.spec.offset);
  }

  /** Bus write, applying each field's access kind, then the model's hook. */
  write(offset: number, written: number): void {
    const i = this.indexOf.get(offset);
    if (i === undefined) return;
    const p = this.plans[i]!;
    written >>>= 0;
    const reserved = (written & ~p.allowed) >>> 0;
    if (reserved !== 0) this.hooks.onReservedWrite?.(p.spec, written, reserved);
    const old = this.values[i]!;
    let v = (old & ~p.rw) | (written & p.rw);
    v &= ~(written & p.w1c);
    v |= written & p.sc;
    v = (v & ~p.wo) | (written & p.wo);
    this.values[i] = v >>> 0;
    this.hooks.onWrite?.({ reg: p.spec, written, old, value: v >>> 0 });
  }

  writeByName(name: string, value: number): void {
    this.write(this.plans[this.idx(name)]!.spec.offset, value);
  }

  snapshot(): Uint32Array {
    return this.values.slice();
  }

  restore(s: Uint32Array): void {
    this.values = s.slice();
  }
}

/** Decode a register value into its fields, for inspectors and traces. */
export function decodeFields(meta: RegisterMeta, value: number): { name: string; value: number; label?: string }[] {
  return meta.fields.map((f) => {
    const v = (value >>> f.lsb) & mask(f.width);
    const label = f.enum ? Object.entries(f.enum).find(([, n]) => n === v)?.[0] : undefined;
    return { name: f.name, value: v >>> 0, label };
  });
}
