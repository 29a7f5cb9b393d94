import type { BlockMeta } from '../shared/session-api';

export type RegisterMeta = BlockMeta['registers'][number];
export type FieldMeta = RegisterMeta['fields'][number];

export interface DecodedField {
  name: string;
  lsb: number;
  width: number;
  access: string;
  reset: number;
  /** null: the register was not read. */
  value: number | null;
  /** The value differs from the previous snapshot. */
  changed: boolean;
  /** The enum name whose value matches, if the field has an enum. */
  label?: string;
  enum?: Record<string, number>;
  doc?: string;
}

export const fieldMask = (width: number): number => (width >= 32 ? 0xffffffff : ((1 << width) - 1) >>> 0);

const extract = (value: number, lsb: number, width: number): number => ((value >>> lsb) & fieldMask(width)) >>> 0;

/** Split a register value into its declared fields, most significant first as datasheets list them. */
export function decodeFields(meta: RegisterMeta, value: number | null, previous: number | null = null): DecodedField[] {
  return [...meta.fields]
    .sort((a, b) => b.lsb - a.lsb)
    .map((f) => {
      const v = value === null ? null : extract(value, f.lsb, f.width);
      const label = f.enum && v !== null ? Object.entries(f.enum).find(([, n]) => n === v)?.[0] : undefined;
      const changed = v !== null && previous !== null && extract(previous, f.lsb, f.width) !== v;
      return { name: f.name, lsb: f.lsb, width: f.width, access: f.access, reset: f.reset, value: v, changed, label, enum: f.enum, doc: f.doc };
    });
}

/** Fields a write acts on rather than stores: writing them back as read would clear, start or command something. */
export const ACTIVE_ACCESS = new Set(['w1c', 'sc', 'wo']);

/**
 * The value to write for a read-modify-write of one field. Every other field that acts on a write
 * (W1C, self-clearing, write-only) is written as 0, which leaves it alone; read-only bits are
 * ignored by the hardware, so what was read is kept.
 */
export function fieldWriteValue(meta: RegisterMeta, stored: number, field: string, fieldValue: number): number {
  let v = stored >>> 0;
  for (const f of meta.fields) if (ACTIVE_ACCESS.has(f.access)) v &= ~((fieldMask(f.width) << f.lsb) >>> 0);
  const f = meta.fields.find((x) => x.name === field);
  if (!f) throw new Error(`${meta.name} has no field ${field}`);
  const m = (fieldMask(f.width) << f.lsb) >>> 0;
  return ((v & ~m) | ((fieldValue << f.lsb) & m)) >>> 0;
}

/** What a write of value does to fields that act on writes, in words, for the confirmation. */
export function writeEffects(meta: RegisterMeta, value: number): string[] {
  return meta.fields
    .filter((f) => ACTIVE_ACCESS.has(f.access) && extract(value, f.lsb, f.width) !== 0)
    .map((f) => {
      const what = f.access === 'w1c' ? 'clears' : f.access === 'sc' ? 'starts' : 'commands';
      return `${what} ${f.name} (${f.access.toUpperCase()}) with ${extract(value, f.lsb, f.width)}`;
    });
}

/** Parse a number as typed: 0x.. hex, 0b.. binary, or decimal; null when it is not one. */
export function parseNumber(s: string): number | null {
  const t = s.trim().replace(/_/g, '').toLowerCase();
  let v: number;
  if (/^0x[0-9a-f]+$/.test(t)) v = parseInt(t.slice(2), 16);
  else if (/^0b[01]+$/.test(t)) v = parseInt(t.slice(2), 2);
  else if (/^\d+$/.test(t)) v = Number(t);
  else return null;
  return Number.isSafeInteger(v) ? v : null;
}
