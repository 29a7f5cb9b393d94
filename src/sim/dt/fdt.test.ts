import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FdtError, isFdt, parseFdt, prop, walk, type FdtNode } from './fdt';

interface TreeSpec {
  name: string;
  props: [string, number[]][];
  children: TreeSpec[];
}

/** A blob for a tree, written the way the format says (the test's own writer, not dtc). */
function blob(tree: TreeSpec, opts: { nops?: boolean; version?: number } = {}): Uint8Array {
  const strings: string[] = [];
  const strOff = (s: string): number => {
    let off = 0;
    for (const x of strings) {
      if (x === s) return off;
      off += x.length + 1;
    }
    strings.push(s);
    return off;
  };
  const words: number[] = [];
  const bytes = (b: number[]): void => {
    const padded = [...b];
    while (padded.length % 4) padded.push(0);
    for (let i = 0; i < padded.length; i += 4) words.push(((padded[i]! << 24) | (padded[i + 1]! << 16) | (padded[i + 2]! << 8) | padded[i + 3]!) >>> 0);
  };
  const node = (t: TreeSpec): void => {
    words.push(1);
    bytes([...[...t.name].map((c) => c.charCodeAt(0)), 0]);
    if (opts.nops) words.push(4);
    for (const [k, cells] of t.props) {
      words.push(3, cells.length * 4, strOff(k));
      for (const c of cells) words.push(c >>> 0);
    }
    t.children.forEach(node);
    words.push(2);
  };
  node(tree);
  words.push(9);
  const strBytes = strings.flatMap((s) => [...[...s].map((c) => c.charCodeAt(0)), 0]);
  const offRsv = 40;
  const offStruct = offRsv + 16;
  const offStrings = offStruct + words.length * 4;
  const total = offStrings + strBytes.length;
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  [0xd00dfeed, total, offStruct, offStrings, offRsv, opts.version ?? 17, 16, 0, strBytes.length, words.length * 4].forEach((x, i) => v.setUint32(i * 4, x));
  words.forEach((w, i) => v.setUint32(offStruct + i * 4, w));
  out.set(strBytes, offStrings);
  return out;
}

const leaf = (name: string, props: [string, number[]][] = []): TreeSpec => ({ name, props, children: [] });

describe('FDT reader', () => {
  it('reads a dtc-compiled blob: paths, properties, labels', () => {
    const fdt = parseFdt(new Uint8Array(readFileSync('test/fixtures/dt/sun50i-h6.dtb')));
    expect(fdt.version).toBe(17);
    const byPath = new Map([...walk(fdt.root)].map((n) => [n.path, n]));
    const iommu = byPath.get('/soc/iommu@30f0000')!;
    expect(prop.strings(iommu.props.get('compatible'))).toEqual(['allwinner,sun50i-h6-iommu']);
    expect(prop.cells(iommu.props.get('reg')!)).toEqual([0x030f0000, 0x10000]);
    expect(prop.u32(iommu.props.get('#iommu-cells'))).toBe(1);
    expect(prop.string(byPath.get('/__symbols__')!.props.get('video_codec'))).toBe('/soc/video-codec@1c0e000');
    expect(byPath.get('/soc/bus@1000000/mixer@100000')!.parent!.path).toBe('/soc/bus@1000000');
  });

  it('round-trips any tree through the format (property)', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9,-]{0,10}(@[0-9a-f]{1,8})?$/);
    const props = fc.uniqueArray(fc.tuple(fc.stringMatching(/^[a-z#][a-z0-9,#-]{0,12}$/), fc.array(fc.nat(), { maxLength: 4 })), { selector: (p) => p[0], maxLength: 4 });
    const treeOf = (depth: number): fc.Arbitrary<TreeSpec> =>
      fc.record({ name, props, children: depth === 0 ? fc.constant([]) : fc.array(treeOf(depth - 1), { maxLength: 3 }) });
    const tree = treeOf(3);
    const shape = (n: FdtNode): unknown => ({ name: n.name, props: [...n.props].map(([k, v]) => [k, prop.cells(v)]), children: n.children.map(shape) });
    const spec = (t: TreeSpec, root: boolean): unknown => ({ name: root ? '' : t.name, props: t.props, children: t.children.map((c) => spec(c, false)) });
    fc.assert(
      fc.property(tree, fc.boolean(), (t, nops) => {
        const root = { ...t, name: '' };
        expect(shape(parseFdt(blob(root, { nops })).root)).toEqual(spec(root, true));
      }),
      { seed: 17, numRuns: 200 },
    );
  });

  it('gives each node its path', () => {
    const fdt = parseFdt(blob({ name: '', props: [], children: [{ name: 'soc', props: [], children: [leaf('iommu@1000')] }, leaf('memory@0')] }));
    expect([...walk(fdt.root)].map((n) => n.path)).toEqual(['/', '/soc', '/soc/iommu@1000', '/memory@0']);
  });

  it('reads string lists and cells as the kernel does', () => {
    const enc = (s: string): Uint8Array => new Uint8Array([...s].map((c) => c.charCodeAt(0)));
    expect(prop.strings(enc('arm,mmu-500\0arm,smmu-v2\0'))).toEqual(['arm,mmu-500', 'arm,smmu-v2']);
    expect(prop.string(enc('okay\0'))).toBe('okay');
    expect(prop.u32(new Uint8Array([0, 0, 1, 2]))).toBe(0x102);
    expect(prop.u32(new Uint8Array([0, 0, 1, 2, 3, 4, 5, 6]))).toBeUndefined();
    expect(prop.cells(new Uint8Array([0xff, 0, 0, 1, 0, 0, 0, 2]))).toEqual([0xff000001, 2]);
  });

  it('refuses what is not a well-formed blob, naming the byte offset', () => {
    const good = blob({ name: '', props: [['a', [1]]], children: [leaf('n')] });
    expect(isFdt(good)).toBe(true);
    expect(isFdt(new Uint8Array([1, 2, 3, 4]))).toBe(false);
    const bad = (mutate: (b: Uint8Array, v: DataView) => Uint8Array | void): Uint8Array => {
      const b = good.slice();
      return mutate(b, new DataView(b.buffer)) ?? b;
    };
    const cases: [Uint8Array, RegExp][] = [
      [bad((b, v) => v.setUint32(0, 0x12345678)), /not a device tree blob: magic 0x12345678/],
      [good.slice(0, 20), /too short/],
      [good.slice(0, good.length - 4), /header says \d+ bytes, the file has/],
      [bad((b, v) => v.setUint32(56, 7)), /unknown structure token 0x7 \(at byte 0x38\)/],
      [bad((b, v) => v.setUint32(24, 18)), /not compatible with 17/],
      [bad((b, v) => v.setUint32(8, 0xfffffff0)), /structure block .* lies outside the blob/],
      [bad((b, v) => v.setUint32(56 + 12, 0x10000)), /runs past the structure block/],
    ];
    for (const [b, re] of cases) {
      expect(() => parseFdt(b)).toThrow(FdtError);
      expect(() => parseFdt(b)).toThrow(re);
    }
    // A missing END_NODE: the root never closes.
    const words = new DataView(good.buffer).getUint32(8);
    const open = blob({ name: '', props: [], children: [] });
    const ov = new DataView(open.buffer);
    ov.setUint32(words + 8, 9);
    expect(() => parseFdt(open)).toThrow(/END inside node \//);
  });

  it('refuses nesting deeper than 64 nodes', () => {
    let t: TreeSpec = leaf('n');
    for (let i = 0; i < 70; i++) t = { name: 'n', props: [], children: [t] };
    expect(() => parseFdt(blob({ ...t, name: '' }))).toThrow(/nested deeper than 64/);
  });
});
