/**
 * Just enough of source maps (v3, one source) to turn a position in the transpiled JavaScript back
 * into the user's TypeScript: the runtime reports errors against the code it ran, users read .ts.
 */
export interface Position {
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
}

/** [generatedColumn, originalLine, originalColumn], all 0-based. */
type Segment = [number, number, number];

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Map([...B64].map((c, i) => [c, i]));

function decodeVlq(s: string): number[] {
  const out: number[] = [];
  let value = 0;
  let shift = 0;
  for (const c of s) {
    const digit = B64_INDEX.get(c);
    if (digit === undefined) throw new Error(`source map: bad VLQ character ${JSON.stringify(c)}`);
    value += (digit & 31) * 2 ** shift;
    if (digit & 32) {
      shift += 5;
      continue;
    }
    out.push(value & 1 ? -Math.floor(value / 2) : Math.floor(value / 2));
    value = 0;
    shift = 0;
  }
  return out;
}

export class SourceMap {
  /** Segments per generated line, sorted by generated column. */
  private readonly lines: Segment[][] = [];

  constructor(json: string) {
    const map = JSON.parse(json) as { mappings: string };
    let origLine = 0;
    let origCol = 0;
    for (const lineText of map.mappings.split(';')) {
      const segs: Segment[] = [];
      let genCol = 0;
      for (const segText of lineText.split(',')) {
        if (segText === '') continue;
        const f = decodeVlq(segText);
        genCol += f[0] ?? 0;
        if (f.length < 4) continue;
        origLine += f[2]!;
        origCol += f[3]!;
        segs.push([genCol, origLine, origCol]);
      }
      this.lines.push(segs);
    }
  }

  /**
   * Original position of a generated one. Within a segment the text is usually copied verbatim
   * (TypeScript only strips types), so the offset into the segment carries over.
   */
  original(gen: Position): Position | null {
    const segs = this.lines[gen.line - 1];
    if (!segs || segs.length === 0) return null;
    const col = gen.column - 1;
    let best: Segment | undefined;
    for (const s of segs) {
      if (s[0] > col) break;
      best = s;
    }
    if (!best) return { line: segs[0]![1] + 1, column: segs[0]![2] + 1 };
    return { line: best[1] + 1, column: best[2] + (col - best[0]) + 1 };
  }
}
