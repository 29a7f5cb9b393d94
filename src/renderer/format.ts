/** Hex helpers in the notation kernel developers read: 0x%08x for values, compact for offsets. */
export const hex32 = (v: number): string => '0x' + (v >>> 0).toString(16).padStart(8, '0');
export const hexOffset = (v: number): string => '0x' + v.toString(16).padStart(3, '0');
export const hexAddr = (v: number): string => '0x' + v.toString(16).padStart(8, '0');

/** A field's bit range as in datasheets: [msb:lsb], or [n] for single bits. */
export const bitRange = (lsb: number, width: number): string =>
  width === 1 ? `[${lsb}]` : `[${lsb + width - 1}:${lsb}]`;

/** A field value: decimal for narrow fields, hex when it is wide enough to be an address or mask. */
export const fieldValue = (v: number, width: number): string => (width > 4 ? '0x' + v.toString(16) : String(v));

/** Simulated time: cycles with thousands separators (narrow spaces keep columns tight). */
export const formatCycles = (c: number): string => `${Math.round(c).toLocaleString('en-US').replace(/,/g, '\u202f')} cyc`;

/** A byte count as developers say it: 4 KiB, 1 MiB. */
export function formatSize(n: number): string {
  for (const [unit, div] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) if (n >= div && n % div === 0) return `${n / div} ${unit}`;
  return `${n} B`;
}
