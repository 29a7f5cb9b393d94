import type { BlockMeta } from '../shared/session-api';

export type RegisterMeta = BlockMeta['registers'][number];

export interface DecodedField {
  name: string;
  lsb: number;
  width: number;
  value: number;
  /** The enum name whose value matches, if the field has an enum. */
  label?: string;
  doc?: string;
}

const mask = (width: number): number => (width >= 32 ? 0xffffffff : ((1 << width) - 1) >>> 0);

/** Split a register value into its declared fields, most significant first as datasheets list them. */
export function decodeFields(meta: RegisterMeta, value: number): DecodedField[] {
  return [...meta.fields]
    .sort((a, b) => b.lsb - a.lsb)
    .map((f) => {
      const v = ((value >>> f.lsb) & mask(f.width)) >>> 0;
      const label = f.enum ? Object.entries(f.enum).find(([, n]) => n === v)?.[0] : undefined;
      return { name: f.name, lsb: f.lsb, width: f.width, value: v, label, doc: f.doc };
    });
}
