/** Every stateful engine component can save and restore its state (explorer runs, sessions). */
export interface Snapshotable<S = unknown> {
  snapshot(): S;
  restore(s: S): void;
}
