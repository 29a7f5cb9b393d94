import type { Snapshotable } from '../core/snapshot';

export const FRAME_SHIFT = 12;
export const FRAME_SIZE = 1 << FRAME_SHIFT;
const FRAME_MASK = FRAME_SIZE - 1;

/** One 4 KiB frame with byte and aligned-word views over the same storage. */
interface Frame {
  u8: Uint8Array;
  u32: Uint32Array;
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
const SLAB_BYTES = 1 << 20;

export class SparseRam implements Snapshotable<RamSnapshot> {
  /** dir[i >> CHUNK_SHIFT][i & CHUNK_MASK] is frame i; chunks appear on first write into them. */
  private dir: (Frame | undefined)[][] = [];
  private count = 0;
  /** Frames are carved from 1 MiB slabs in touch order: frames touched together sit together in host memory, which makes bulk DMA copies run near memcpy speed. */
  private slab = new ArrayBuffer(0);
  private slabNext = SLAB_BYTES;
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
    return this.frame(pa, false) !== undefined;
  }

  touchedFrames(): number {
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
    return [...this.each()].map(([i]) => this.base + i * FRAME_SIZE);
  }

  private frame(pa: number, create: boolean): Frame | undefined {
    const off = pa - this.base;
    const idx = off < 0x1_0000_0000 ? off >>> FRAME_SHIFT : Math.floor(off / FRAME_SIZE);
    const chunk = this.dir[idx >>> CHUNK_SHIFT];
    const f = chunk?.[idx & CHUNK_MASK];
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
      if (this.slabNext === SLAB_BYTES) {
        this.slab = new ArrayBuffer(SLAB_BYTES);
        this.slabNext = 0;
      }
      f = { u8: new Uint8Array(this.slab, this.slabNext, FRAME_SIZE), u32: new Uint32Array(this.slab, this.slabNext, FRAME_SIZE / 4), epoch: this.epoch };
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
    const f = this.frame(pa, false);
    if (!f) return 0;
    const off = (pa - this.base) & FRAME_MASK;
    if ((off & 3) === 0) return f.u32[off >> 2]!;
    return (this.read8(pa) | (this.read8(pa + 1) << 8) | (this.read8(pa + 2) << 16) | (this.read8(pa + 3) << 24)) >>> 0;
  }

  write32(pa: number, v: number): void {
    const off = (pa - this.base) & FRAME_MASK;
    if ((off & 3) === 0) {
      this.frame(pa, true)!.u32[off >> 2] = v >>> 0;
      return;
    }
    for (let i = 0; i < 4; i++) this.write8(pa + i, (v >>> (8 * i)) & 0xff);
  }

  read8(pa: number): number {
    const f = this.frame(pa, false);
    return f ? f.u8[(pa - this.base) & FRAME_MASK]! : 0;
  }

  write8(pa: number, v: number): void {
    this.frame(pa, true)!.u8[(pa - this.base) & FRAME_MASK] = v & 0xff;
  }

  /** Copy len bytes at pa into dst[dstOff..]. Crosses frames; untouched frames read as zero. */
  readInto(pa: number, dst: Uint8Array, dstOff: number, len: number): void {
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
    let done = 0;
    while (done < len) {
      const cur = pa + done;
      const off = (cur - this.base) & FRAME_MASK;
      const n = Math.min(len - done, FRAME_SIZE - off);
      this.frame(cur, true)!.u8.set(src.subarray(srcOff + done, srcOff + done + n), off);
      done += n;
    }
  }

  /** RAM-to-RAM copy (DMA engines), frame by frame, without an intermediate buffer. */
  copy(dstPa: number, srcPa: number, len: number): void {
    let done = 0;
    while (done < len) {
      const s = srcPa + done;
      const d = dstPa + done;
      const so = (s - this.base) & FRAME_MASK;
      const dof = (d - this.base) & FRAME_MASK;
      const n = Math.min(len - done, FRAME_SIZE - so, FRAME_SIZE - dof);
      const sf = this.frame(s, false);
      const df = this.frame(d, true)!;
      // Whole frames (page-sized DMA beats) copy without creating a view.
      if (sf && n === FRAME_SIZE) df.u8.set(sf.u8);
      else if (sf) df.u8.set(sf.u8.subarray(so, so + n), dof);
      else df.u8.fill(0, dof, dof + n);
      done += n;
    }
  }

  /** Start a copy-on-write checkpoint; it replaces any earlier one. */
  checkpoint(): RamCheckpoint {
    this.epoch++;
    this.cp = { epoch: this.epoch, saved: new Map() };
    return this.cp;
  }

  /** Put memory back as it was at cp (the latest checkpoint), which stays valid for more rollbacks. */
  rollback(cp: RamCheckpoint): void {
    if (cp !== this.cp) throw new Error('RAM rollback to a checkpoint that is not the latest');
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
    (cp as { epoch: number }).epoch = this.epoch;
  }

  snapshot(): RamSnapshot {
    const frames = new Map<number, Uint8Array>();
    for (const [k, f] of this.each()) frames.set(k, f.u8.slice());
    return { frames };
  }

  restore(s: RamSnapshot): void {
    this.cp = null;
    this.spare = [];
    this.dir = [];
    this.count = 0;
    this.slabNext = SLAB_BYTES;
    for (const [k, u8] of s.frames) this.install(k).u8.set(u8);
  }
}
