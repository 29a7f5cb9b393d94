/**
 * Memory-view helpers: which frames of a range were ever written, and which CPU cache lines in it
 * are dirty. Both are cheap enough to call once per visible window and never allocate RAM frames
 * or cache lines, so looking at memory does not change what the simulation later sees.
 */
import { LINE_SIZE, type CpuCache } from '../mem/cpu-cache';
import { FRAME_SIZE, type SparseRam } from '../mem/ram';

/** Addresses of the touched 4 KiB frames that overlap [pa, pa+len), ascending. */
export function touchedFramesIn(ram: SparseRam, pa: number, len: number): number[] {
  if (len <= 0) return [];
  const first = pa - (pa % FRAME_SIZE);
  const end = pa + len;
  const probes = Math.ceil((end - first) / FRAME_SIZE);
  // A huge range over a sparse RAM is faster to answer from the list of touched frames.
  if (probes > ram.touchedFrames()) return ram.touchedAddresses().filter((a) => a + FRAME_SIZE > pa && a < end);
  const out: number[] = [];
  for (let a = first; a < end; a += FRAME_SIZE) if (ram.contains(a) && ram.isTouched(a)) out.push(a);
  return out;
}

/** Addresses of dirty (written by the CPU, not cleaned) cache lines overlapping [pa, pa+len). */
export function dirtyLinesIn(cache: CpuCache, pa: number, len: number): number[] {
  return cache.dirtyLines().filter((a) => a + LINE_SIZE > pa && a < pa + len);
}
