/**
 * A Map that can roll back: after checkpoint(), the first change to each key records the key's
 * value before it, and rollback() puts those back. Both cost what changed since, not the map's
 * size, which keeps explorer restores of large kernel state (a page per allocated frame) cheap.
 * Values are treated as immutable: change an entry by setting a new value, never by mutating it.
 */
const ABSENT: unique symbol = Symbol('absent');

export class UndoMap<K, V> implements Iterable<[K, V]> {
  private readonly m: Map<K, V>;
  /** Key → its value at the checkpoint (ABSENT: it had none); null while no checkpoint is taken. */
  private log: Map<K, V | typeof ABSENT> | null = null;

  constructor(entries?: Iterable<readonly [K, V]>) {
    this.m = new Map(entries);
  }

  get size(): number {
    return this.m.size;
  }

  get(k: K): V | undefined {
    return this.m.get(k);
  }

  has(k: K): boolean {
    return this.m.has(k);
  }

  set(k: K, v: V): this {
    this.note(k);
    this.m.set(k, v);
    return this;
  }

  delete(k: K): boolean {
    if (!this.m.has(k)) return false;
    this.note(k);
    return this.m.delete(k);
  }

  keys(): IterableIterator<K> {
    return this.m.keys();
  }

  values(): IterableIterator<V> {
    return this.m.values();
  }

  entries(): IterableIterator<[K, V]> {
    return this.m.entries();
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.m.entries();
  }

  private note(k: K): void {
    const log = this.log;
    if (log && !log.has(k)) log.set(k, this.m.has(k) ? this.m.get(k)! : ABSENT);
  }

  /** Start recording changes; this replaces any earlier checkpoint. */
  checkpoint(): void {
    this.log = new Map();
  }

  /** Put back the contents of the latest checkpoint, which stays valid for more rollbacks. */
  rollback(): void {
    const log = this.log;
    if (!log) throw new Error('UndoMap rollback without a checkpoint');
    for (const [k, v] of log) {
      if (v === ABSENT) this.m.delete(k);
      else this.m.set(k, v);
    }
    log.clear();
  }

  /** Replace the whole contents (a full restore); any checkpoint is dropped. */
  reset(entries: Iterable<readonly [K, V]>): void {
    this.log = null;
    this.m.clear();
    for (const [k, v] of entries) this.m.set(k, v);
  }
}
