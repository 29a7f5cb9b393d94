/** Every stateful engine component can save and restore its state (explorer runs, sessions). */
export interface Snapshotable<S = unknown> {
  snapshot(): S;
  restore(s: S): void;
}

/**
 * Copy-on-write checkpoints for the explorer, which restores one state before every run: taking a
 * checkpoint and rolling back to it must cost what changed since, not what exists. rollback(cp)
 * is only valid for the latest checkpoint, and keeps it valid for further rollbacks. Components
 * with large state (RAM, the CPU cache, the page allocator, a wasm driver's memory) implement it;
 * small ones are just snapshotted.
 */
export interface Checkpointable<C = unknown> {
  checkpoint(): C;
  rollback(cp: C): void;
}
