/**
 * Yielding to the host's event loop: a macrotask runs after every pending promise job, so a
 * thread that is still waiting then waits on something outside the engine. Node's setImmediate,
 * declared here instead of through Node's types: the renderer's type check reaches these modules
 * for the types they export and has no Node types.
 */
declare function setImmediate(fn: () => void): unknown;
declare function clearImmediate(handle: unknown): void;

/** Runs fn on a later macrotask; the returned function cancels it. */
export function onMacrotask(fn: () => void): () => void {
  const handle = setImmediate(fn);
  return () => clearImmediate(handle);
}

/** Resolves on a later macrotask. */
export function macrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
