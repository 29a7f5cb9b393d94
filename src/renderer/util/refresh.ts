/**
 * View refresh coordination. The simulation runs elsewhere and answers when it can; the renderer
 * never waits on it. Every view registers one refresher; a refresh request is coalesced to the next
 * animation frame, and a view never has more than one refresh in flight: a request arriving while
 * one runs marks it to run once more when it ends.
 */
type Refresher = () => Promise<void>;

interface Entry {
  fn: Refresher;
  inFlight: boolean;
  again: boolean;
}

const entries = new Set<Entry>();
let queued = false;

async function run(e: Entry): Promise<void> {
  if (e.inFlight) {
    e.again = true;
    return;
  }
  e.inFlight = true;
  try {
    await e.fn();
  } catch (err) {
    // A view that fails to refresh shows its old state; the session store reports host errors.
    console.warn('view refresh failed:', err);
  } finally {
    e.inFlight = false;
    if (e.again && entries.has(e)) {
      e.again = false;
      void run(e);
    }
  }
}

/** Register a view's refresher; it runs at once. Returns the unregister function. */
export function onRefresh(fn: Refresher): () => void {
  const e: Entry = { fn, inFlight: false, again: false };
  entries.add(e);
  void run(e);
  return () => entries.delete(e);
}

/** Ask every registered view to refresh, once, on the next frame. */
export function requestRefresh(): void {
  if (queued) return;
  queued = true;
  requestAnimationFrame(() => {
    queued = false;
    for (const e of entries) void run(e);
  });
}

/**
 * A single coalesced task (one view's own re-fetch, e.g. after a scroll): at most one in flight,
 * requests during a flight collapse into one more run, and a burst of requests within a frame is one.
 */
export function coalesced(fn: () => Promise<void>): () => void {
  let frame = false;
  let inFlight = false;
  let again = false;
  const go = async (): Promise<void> => {
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    try {
      await fn();
    } catch (err) {
      console.warn('view fetch failed:', err);
    } finally {
      inFlight = false;
      if (again) {
        again = false;
        void go();
      }
    }
  };
  return () => {
    if (frame) return;
    frame = true;
    requestAnimationFrame(() => {
      frame = false;
      void go();
    });
  };
}
