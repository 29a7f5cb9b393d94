/**
 * A reader for flattened device tree blobs (the .dtb format of the devicetree specification,
 * "Flattened Devicetree (DTB) Format"): a big-endian header, a structure block of tokens
 * (BEGIN_NODE name, PROP len nameoff value, END_NODE, NOP, END) and a strings block holding the
 * property names. Version 16 and later (what dtc has written since 2008) are read; anything
 * malformed is an FdtError naming the byte offset, never a partial tree.
 */

export const FDT_MAGIC = 0xd00dfeed;
const FDT_BEGIN_NODE = 1;
const FDT_END_NODE = 2;
const FDT_PROP = 3;
const FDT_NOP = 4;
const FDT_END = 9;
/** Deeper trees are refused; real ones are under 10 levels. */
const MAX_DEPTH = 64;

export class FdtError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} (at byte 0x${offset.toString(16)})`);
    this.name = 'FdtError';
  }
}

export interface FdtNode {
  /** Node name with unit address, e.g. "iommu@30f0000"; "" for the root. */
  name: string;
  /** Full path, e.g. "/soc/iommu@30f0000"; "/" for the root. */
  path: string;
  props: Map<string, Uint8Array>;
  children: FdtNode[];
  parent: FdtNode | null;
}

export interface Fdt {
  root: FdtNode;
  version: number;
  bootCpu: number;
  /** The memory reservation block's entries. */
  reserved: { address: bigint; size: bigint }[];
}

/** Is this a device tree blob (by its magic)? */
export function isFdt(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0) === FDT_MAGIC;
}

export function parseFdt(bytes: Uint8Array): Fdt {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (off: number): number => {
    if (off + 4 > bytes.length) throw new FdtError('truncated blob', off);
    return view.getUint32(off);
  };
  if (bytes.length < 40) throw new FdtError(`too short for a device tree header: ${bytes.length} bytes`, 0);
  if (u32(0) !== FDT_MAGIC) throw new FdtError(`not a device tree blob: magic 0x${u32(0).toString(16)}, expected 0x${FDT_MAGIC.toString(16)}`, 0);
  const totalSize = u32(4);
  const offStruct = u32(8);
  const offStrings = u32(12);
  const offRsvmap = u32(16);
  const version = u32(20);
  const lastComp = u32(24);
  const bootCpu = u32(28);
  if (version < 16 && lastComp > 16) throw new FdtError(`unsupported version ${version}`, 20);
  if (lastComp > 17) throw new FdtError(`version ${version} is not compatible with 17 (last compatible ${lastComp})`, 24);
  if (totalSize > bytes.length) throw new FdtError(`header says ${totalSize} bytes, the file has ${bytes.length}`, 4);
  const sizeStrings = u32(32);
  const sizeStruct = version >= 17 ? u32(36) : totalSize - offStruct;
  const inBlob = (off: number, size: number, what: string, at: number): void => {
    if (off > totalSize || size > totalSize - off) throw new FdtError(`${what} (0x${off.toString(16)}+0x${size.toString(16)}) lies outside the blob`, at);
  };
  inBlob(offStruct, sizeStruct, 'structure block', 8);
  inBlob(offStrings, sizeStrings, 'strings block', 12);
  inBlob(offRsvmap, 16, 'memory reservation block', 16);

  const reserved: Fdt['reserved'] = [];
  for (let off = offRsvmap; ; off += 16) {
    if (off + 16 > totalSize) throw new FdtError('memory reservation block has no terminating entry', off);
    const address = view.getBigUint64(off);
    const size = view.getBigUint64(off + 8);
    if (address === 0n && size === 0n) break;
    reserved.push({ address, size });
  }

  const stringAt = (nameoff: number, at: number): string => {
    if (nameoff >= sizeStrings) throw new FdtError(`property name offset ${nameoff} is outside the strings block`, at);
    const start = offStrings + nameoff;
    const end = bytes.indexOf(0, start);
    if (end < 0 || end >= offStrings + sizeStrings) throw new FdtError('unterminated property name', start);
    return latin1(bytes.subarray(start, end));
  };

  const end = offStruct + sizeStruct;
  let p = offStruct;
  const align = (): void => {
    p = (p + 3) & ~3;
  };
  let root: FdtNode | null = null;
  let cur: FdtNode | null = null;
  let depth = 0;
  for (;;) {
    if (p + 4 > end) throw new FdtError('structure block ends without an END token', p);
    const at = p;
    const token = u32(p);
    p += 4;
    if (token === FDT_BEGIN_NODE) {
      const nameEnd = bytes.indexOf(0, p);
      if (nameEnd < 0 || nameEnd >= end) throw new FdtError('unterminated node name', p);
      const name = latin1(bytes.subarray(p, nameEnd));
      p = nameEnd + 1;
      align();
      if (cur === null && root !== null) throw new FdtError('a second root node', at);
      if (++depth > MAX_DEPTH) throw new FdtError(`nodes nested deeper than ${MAX_DEPTH}`, at);
      const path = cur === null ? '/' : cur.path === '/' ? `/${name}` : `${cur.path}/${name}`;
      const node: FdtNode = { name, path, props: new Map(), children: [], parent: cur };
      if (cur) cur.children.push(node);
      else root = node;
      cur = node;
    } else if (token === FDT_END_NODE) {
      if (!cur) throw new FdtError('END_NODE outside any node', at);
      cur = cur.parent;
      depth--;
    } else if (token === FDT_PROP) {
      if (!cur) throw new FdtError('property outside any node', at);
      const len = u32(p);
      const nameoff = u32(p + 4);
      p += 8;
      if (len > end - p) throw new FdtError(`property of ${len} bytes runs past the structure block`, at);
      cur.props.set(stringAt(nameoff, at + 8), bytes.slice(p, p + len));
      p += len;
      align();
    } else if (token === FDT_NOP) {
      continue;
    } else if (token === FDT_END) {
      if (cur !== null) throw new FdtError(`END inside node ${cur.path}`, at);
      break;
    } else {
      throw new FdtError(`unknown structure token 0x${token.toString(16)}`, at);
    }
  }
  if (!root) throw new FdtError('the structure block has no root node', offStruct);
  return { root, version, bootCpu, reserved };
}

function latin1(b: Uint8Array): string {
  let s = '';
  for (const c of b) s += String.fromCharCode(c);
  return s;
}

/** Property value helpers, as the kernel's of_property_read_* read them (big-endian cells). */
export const prop = {
  cells(v: Uint8Array): number[] {
    const view = new DataView(v.buffer, v.byteOffset, v.byteLength);
    return Array.from({ length: v.length >>> 2 }, (_, i) => view.getUint32(i * 4));
  },
  u32(v: Uint8Array | undefined): number | undefined {
    return v && v.length === 4 ? new DataView(v.buffer, v.byteOffset, 4).getUint32(0) : undefined;
  },
  /** A string list (compatible, clock-names, ...): NUL-separated. */
  strings(v: Uint8Array | undefined): string[] {
    if (!v || v.length === 0) return [];
    const s = latin1(v[v.length - 1] === 0 ? v.subarray(0, v.length - 1) : v);
    return s.split('\0');
  },
  string(v: Uint8Array | undefined): string | undefined {
    return v ? prop.strings(v)[0] : undefined;
  },
};

/** Walk every node, parents before children. */
export function* walk(node: FdtNode): Generator<FdtNode> {
  yield node;
  for (const c of node.children) yield* walk(c);
}
