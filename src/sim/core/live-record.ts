/**
 * A live record: an object whose reads come from its owner and whose assignments go to it, checked
 * (kernel.driver(x).variant). Everything else the script API returns is a copy; a live record is
 * how an object says "assigning to me takes effect". The sandbox bridge recognises one and gives
 * the script a proxy that calls the same read and write.
 */
export type Scalar = string | number | boolean;

export interface LiveSource {
  /** The current values (a fresh copy). */
  read(): Record<string, Scalar>;
  /** Assign one key; throws (TypeError) on an unknown key or a bad value, naming both. */
  write(key: string, value: unknown): void;
}

const sources = new WeakMap<object, { name: string; source: LiveSource }>();

/** A host object over source: reads and writes go through it, nothing else changes it. */
export function liveRecord(name: string, source: LiveSource): Record<string, Scalar> {
  const refuse = (what: string): never => {
    throw new TypeError(`${name}: ${what}; assign a key instead`);
  };
  const proxy = new Proxy({} as Record<string, Scalar>, {
    get: (_t, k) => (typeof k === 'string' ? source.read()[k] : undefined),
    set: (_t, k, v) => {
      source.write(String(k), v);
      return true;
    },
    has: (_t, k) => typeof k === 'string' && Object.hasOwn(source.read(), k),
    ownKeys: () => Object.keys(source.read()),
    getOwnPropertyDescriptor: (_t, k) => {
      const r = source.read();
      return typeof k === 'string' && Object.hasOwn(r, k) ? { value: r[k], writable: true, enumerable: true, configurable: true } : undefined;
    },
    deleteProperty: (_t, k) => refuse(`${String(k)} cannot be deleted`),
    defineProperty: (_t, k, d) => {
      if (!('value' in d) || d.get || d.set) return refuse(`${String(k)} cannot be an accessor`);
      source.write(String(k), d.value);
      return true;
    },
    preventExtensions: () => refuse('it is live and cannot be frozen'),
    setPrototypeOf: () => refuse('its prototype cannot be changed'),
  });
  sources.set(proxy, { name, source });
  return proxy;
}

/** The source behind a live record made by liveRecord, if v is one. */
export function liveSourceOf(v: object): { name: string; source: LiveSource } | undefined {
  return sources.get(v);
}
