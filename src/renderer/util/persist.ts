/** localStorage JSON helpers: corrupt or missing entries fall back to the default. */
export function loadJson<T>(key: string, fallback: T): T {
  try {
    const s = localStorage.getItem(key);
    return s === null ? fallback : { ...fallback, ...(JSON.parse(s) as T) };
  } catch {
    return fallback;
  }
}

export function loadList<T>(key: string): T[] {
  try {
    const v = JSON.parse(localStorage.getItem(key) ?? '[]') as unknown;
    return Array.isArray(v) ? (v as T[]) : [];
  } catch {
    return [];
  }
}

export function saveJson(key: string, v: unknown): void {
  try {
    localStorage.setItem(key, JSON.stringify(v));
  } catch {
    // Quota exceeded: persistence is best effort, the session goes on.
  }
}
