import type { Snapshotable } from '../core/snapshot';

export const FRAME_SHIFT = 12;
export const FRAME_SIZE = 1 << FRAME_SHIFT;
const FRAME_MASK = FRAME_SIZE - 1;

/** One 4 KiB frame with byte and aligned-word views over the same storage. */
interface Frame {
  u8: Uint8Array;
  u32: Uint32Array;
  /** The whole slab the frame was carved from, and the frame's byte offset in it (bulk copies span frames). */
  slab: Uint8Array;
  at: number;
  /** The checkpoint epoch this frame's original was saved in (writes in it save nothing more). */
  epoch: number;
}

/**
 * A copy-on-write checkpoint: a frame's content is saved on its first write after the checkpoint
 * (null: the frame did not exist), so taking one and rolling back cost what was written since.
 */
export interface RamCheckpoint {
  readonly epoch: number;
  readonly saved: Map<number, Uint8Array | null>;
}

export interface RamSnapshot {
  frames: Map<number, Uint8Array>;
}

/**
 * Sparse physical RAM: frames are allocated on first write, so a 4 GiB space costs only what is
 * touched. Untouched memory reads as zero. Words are little-endian, as on the SoCs modelled.
 */
/** Frames per directory chunk: the directory is a two-level array, so lookups hash nothing. */
const CHUNK_SHIFT = 10;
const CHUNK_MASK = (1 << CHUNK_SHIFT) - 1;
/** Slab sizes: the first is 1 MiB, each later one as big as all before it (up to 16 MiB), so at most half the slab space is untouched. */
const SLAB_MIN = 1 << 20;
const SLAB_MAX = 16 << 20;

export class SparseRam implements Snapshotable<RamSnapshot> {
  /** dir[i >> CHUNK_SHIFT][i & CHUNK_MASK] is frame i; chunks appear on first write into them. */
  private dir: (Frame | undefined)[][] = [];
  private count = 0;
  /**
   * Frames are carved from slabs in touch order: frames touched together sit together in host memory,
   * so a bulk DMA copy is a few large copies (runs of several MiB copy at memcpy speed, 1 MiB ones
   * about 10% slower).
   */
  private slab = new Uint8Array(0);
  private slabNext = 0;
  /** Bytes of all slabs so far. */
  private slabTotal = 0;
  /**
   * Bumped whenever bytes land in RAM (stores, copies, rollback, restore): what was read before is
   * still there while it holds. Bytes of a queued copy land when it settles; pendingOver() says
   * whether a range is about to change that way.
   */
  generation = 0;
  /** A copy queued by queueCopy (qLen 0: none), applied before anything touches either of its ranges. */
  private qDst = 0;
  private qSrc = 0;
  private qLen = 0;
  /** Frames dropped by a rollback, reused before new slab space. */
  private spare: Frame[] = [];
  private epoch = 0;
  private cp: RamCheckpoint | null = null;

  constructor(
    readonly base: number,
    readonly size: number,
  ) {}

  contains(pa: number, len = 1): boolean {
    return pa >= this.base && pa + len <= this.base + this.size;
  }

  /** Whether the frame holding pa has ever been written. */
  isTouched(pa: number): boolean {
    this.settle();
    return this.frame(pa, false) !== undefined;
  }

  touchedFrames(): number {
    this.settle();
    return this.count;
  }

  /** Frame indices and frames, ascending. */
  private *each(): Generator<[number, Frame]> {
    for (let c = 0; c < this.dir.length; c++) {
      const chunk = this.dir[c];
      if (!chunk) continue;
      for (let i = 0; i < chunk.length; i++) {
        const f = chunk[i];
        if (f) yield [(c << CHUNK_SHIFT) + i, f];
      }
    }
  }

  /** Physical addresses of touched frames, ascending. */
  touchedAddresses(): number[] {
    this.settle();
    return [...this.each()].map(([i]) => this.base + i * FRAME_SIZE);
  }

  private index(pa: number): number {
    const off = pa - this.base;
    return off < 0x1_0000_0000 ? off >>> FRAME_SHIFT : Math.floor(off / FRAME_SIZE);
  }

  private frame(pa: number, create: boolean): Frame | undefined {
    return this.frameAt(this.index(pa), create);
  }

  private frameAt(idx: number, create: boolean): Frame | undefined {
    const f = this.dir[idx >>> CHUNK_SHIFT]?.[idx & CHUNK_MASK];
    if (f) {
      if (create && f.epoch !== this.epoch) this.saveOriginal(idx, f);
      return f;
    }
    return create ? this.install(idx) : undefined;
  }

  private saveOriginal(idx: number, f: Frame): void {
    f.epoch = this.epoch;
    this.cp?.saved.set(idx, f.u8.slice());
  }

  /** A new zeroed frame for index idx. */
  private install(idx: number): Frame {
    let f = this.spare.pop();
    if (f) {
      f.u8.fill(0);
      f.epoch = this.epoch;
    } else {
      if (this.slabNext === this.slab.length) {
        this.slab = new Uint8Array(Math.min(SLAB_MAX, Math.max(SLAB_MIN, this.slabTotal)));
        this.slabTotal += this.slab.length;
        this.slabNext = 0;
      }
      const buf = this.slab.buffer;
      f = { u8: new Uint8Array(buf, this.slabNext, FRAME_SIZE), u32: new Uint32Array(buf, this.slabNext, FRAME_SIZE / 4), slab: this.slab, at: this.slabNext, epoch: this.epoch };
      this.slabNext += FRAME_SIZE;
    }
    this.cp?.saved.set(idx, null);
    const c = idx >>> CHUNK_SHIFT;
    const chunk = (this.dir[c] ??= new Array<Frame | undefined>(1 << CHUNK_SHIFT).fill(undefined));
    chunk[idx & CHUNK_MASK] = f;
    this.count++;
    return f;
  }

  read32(pa: number): number {
    if (this.qLen !== 0) this.touch(pa, 4);
    const f = this.frame(pa, false);
    if (!f) return 0;
    const off = (pa - this.base) & FRAME_MASK;
    if ((off & 3) === 0) return f.u32[off >> 2]!;
    return (this.read8(pa) | (this.read8(pa + 1) << 8) | (this.read8(pa + 2) << 16) | (this.read8(pa + 3) << 24)) >>> 0;
  }

  write32(pa: number, v: number): void {
    if (this.qLen !== 0) this.touch(pa, 4);
    this.generation++;
    const off = (pa - this.base) & FRAME_MASK;
    if ((off & 3) === 0) {
      this.frame(pa, true)!.u32[off >> 2] = v >>> 0;
      return;
    }
    for (let i = 0; i < 4; i++) this.write8(pa + i, (v >>> (8 * i)) & 0xff);
  }

  read8(pa: number): number {
    if (this.qLen !== 0) this.touch(pa, 1);
    const f = this.frame(pa, false);
    return f ? f.u8[(pa - this.base) & FRAME_MASK]! : 0;
  }

  write8(pa: number, v: number): void {
    if (this.qLen !== 0) this.touch(pa, 1);
    this.generation++;
    this.frame(pa, true)!.u8[(pa - this.base) & FRAME_MASK] = v & 0xff;
  }

  /** Copy len bytes at pa into dst[dstOff..]. Crosses frames; untouched frames read as zero. */
  readInto(pa: number, dst: Uint8Array, dstOff: number, len: number): void {
    if (this.qLen !== 0) this.touch(pa, len);
    let done = 0;
    while (done < len) {
      const cur = pa + done;
      const off = (cur - this.base) & FRAME_MASK;
      const n = Math.min(len - done, FRAME_SIZE - off);
      const f = this.frame(cur, false);
      if (f) dst.set(f.u8.subarray(off, off + n), dstOff + done);
      else dst.fill(0, dstOff + done, dstOff + done + n);
      done += n;
    }
  }

  read(pa: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.readInto(pa, out, 0, len);
    return out;
  }

  /** Copy src[srcOff..srcOff+len] to pa. */
  writeFrom(pa: number, src: Uint8Array, srcOff = 0, len = src.length - srcOff): void {
    if (this.qLen !== 0) this.touch(pa, len);
    this.generation++;
    const start = (pa - this.base) & FRAME_MASK;
    // All of src into one frame (cache-line write-backs): no view to create.
    if (srcOff === 0 && len === src.length && start + len <= FRAME_SIZE) {
      this.frame(pa, true)!.u8.set(src, start);
      return;
    }
    let done = 0;
    while (done < len) {
      const cur = pa + done;
      const off = (cur - this.base) & FRAME_MASK;
      const n = Math.min(len - done, FRAME_SIZE - off);
      this.frame(cur, true)!.u8.set(src.subarray(srcOff + done, srcOff + done + n), off);
      done += n;
    }
  }

  /** RAM-to-RAM copy, frame by frame in address order (overlapping ranges copy forwards). */
  copy(dstPa: number, srcPa: number, len: number): void {
    this.settle();
    this.copyNow(dstPa, srcPa, len);
  }

  /**
   * A DMA engine's copy beat. Beats that continue the queued copy on both sides are merged into it
   * and applied as one bulk copy later: by settle(), or by the first access (from anyone: walker,
   * CPU cache, checker, another engine) that touches either range, so every reader sees each beat
   * as done when it was issued. Only beats whose merged ranges stay disjoint are merged, where
   * copying at once and copying beat by beat give the same bytes.
   */
  queueCopy(dstPa: number, srcPa: number, len: number): void {
    if (this.qLen !== 0) {
      const n = this.qLen + len;
      if (srcPa === this.qSrc + this.qLen && dstPa === this.qDst + this.qLen && (this.qSrc + n <= this.qDst || this.qDst + n <= this.qSrc)) {
        this.qLen = n;
        return;
      }
      this.settle();
    }
    if (srcPa + len <= dstPa || dstPa + len <= srcPa) {
      this.qDst = dstPa;
      this.qSrc = srcPa;
      this.qLen = len;
    } else this.copyNow(dstPa, srcPa, len);
  }

  /** Apply the queued copy, if any. */
  settle(): void {
    const len = this.qLen;
    if (len === 0) return;
    this.qLen = 0;
    this.copyNow(this.qDst, this.qSrc, len);
  }

  /** Whether a queued copy will still write into [pa, pa+len). */
  pendingOver(pa: number, len: number): boolean {
    return this.qLen !== 0 && pa < this.qDst + this.qLen && this.qDst < pa + len;
  }

  /** Settle first if [pa, pa+len) overlaps either range of the queued copy. */
  private touch(pa: number, len: number): void {
    const q = this.qLen;
    if ((pa < this.qSrc + q && this.qSrc < pa + len) || (pa < this.qDst + q && this.qDst < pa + len)) this.settle();
  }

  private copyNow(dstPa: number, srcPa: number, len: number): void {
    this.generation++;
    // Frames that follow each other in a slab on both sides are copied in one go, which only
    // gives the frame-by-frame result when the ranges are disjoint.
    const runs = srcPa + len <= dstPa || dstPa + len <= srcPa;
    let done = 0;
    while (done < len) {
      const s = srcPa + done;
      const d = dstPa + done;
      const so = (s - this.base) & FRAME_MASK;
      const dof = (d - this.base) & FRAME_MASK;
      let n = Math.min(len - done, FRAME_SIZE - so, FRAME_SIZE - dof);
      const sf = this.frame(s, false);
      const df = this.frame(d, true)!;
      if (!sf) {
        df.u8.fill(0, dof, dof + n);
        done += n;
        continue;
      }
      if (runs && so === dof) {
        // Both sides advance a whole frame per step: step their frame indices, not addresses.
        for (let si = this.index(s) + 1, di = this.index(d) + 1; done + n < len; si++, di++) {
          const ns = this.frameAt(si, false);
          if (ns === undefined || ns.slab !== sf.slab || ns.at !== sf.at + so + n) break;
          const nd = this.frameAt(di, true)!;
          if (nd.slab !== df.slab || nd.at !== df.at + dof + n) break;
          n += Math.min(FRAME_SIZE, len - done - n);
        }
      }
      // Whole frames (page-sized DMA beats) copy without creating a view.
      if (n === FRAME_SIZE && so === 0 && dof === 0) df.u8.set(sf.u8);
      else if (sf.slab === df.slab) df.slab.copyWithin(df.at + dof, sf.at + so, sf.at + so + n);
      else df.slab.set(sf.slab.subarray(sf.at + so, sf.at + so + n), df.at + dof);
      done += n;
    }
  }

  /** Start a copy-on-write checkpoint; it replaces any earlier one. */
  checkpoint(): RamCheckpoint {
    this.settle();
    this.epoch++;
    this.cp = { epoch: this.epoch, saved: new Map() };
    return this.cp;
  }

  /** Put memory back as it was at cp (the latest checkpoint), which stays valid for more rollbacks. */
  rollback(cp: RamCheckpoint): void {
    if (cp !== this.cp) throw new Error('RAM rollback to a checkpoint that is not the latest');
    // A queued copy was issued after the checkpoint (which settled): rolling back undoes it.
    this.qLen = 0;
    for (const [idx, data] of cp.saved) {
      const chunk = this.dir[idx >>> CHUNK_SHIFT]!;
      const f = chunk[idx & CHUNK_MASK]!;
      if (data) f.u8.set(data);
      else {
        chunk[idx & CHUNK_MASK] = undefined;
        this.count--;
        this.spare.push(f);
      }
    }
    cp.saved.clear();
    // Every frame must save its original again on its next write.
    this.epoch++;
    this.generation++;
    (cp as { epoch: number }).epoch = this.epoch;
  }

  snapshot(): RamSnapshot {
    this.settle();
    const frames = new Map<number, Uint8Array>();
    for (const [k, f] of this.each()) frames.set(k, f.u8.slice());
    return { frames };
  }

  restore(s: RamSnapshot): void {
    this.qLen = 0;
    this.generation++;
    this.cp = null;
    this.spare = [];
    this.dir = [];
    this.count = 0;
    this.slab = new Uint8Array(0);
    this.slabNext = 0;
    this.slabTotal = 0;
    for (const [k, u8] of s.frames) this.install(k).u8.set(u8);
  }
}
