/** A driver's variant object: its defaults, overridden by same-typed keys of the config's options. */
export type Variant = Record<string, string | number | boolean>;

export function variantFrom<V extends object>(defaults: V, options: Variant | undefined): V & Variant {
  const v: Variant = { ...(defaults as Variant) };
  for (const k of Object.keys(v)) {
    const o = options?.[k];
    if (o !== undefined && typeof o === typeof v[k]) v[k] = o;
  }
  return v as V & Variant;
}

/**
 * The values a string variant may take, by key (the same key means the same thing in every driver
 * that has it). Booleans and numbers are checked by type.
 */
export const VARIANT_CHOICES: Readonly<Record<string, readonly string[]>> = {
  zapOrder: ['after-update', 'before-update'],
  tableInstall: ['cmpxchg', 'store'],
  partialUnmap: ['split', 'split-upstream', 'refuse'],
  flushWalk: ['tlbiva', 'tlbiasid', 'tlbival'],
  leaveDomain: ['refcount', 'disable'],
  mapBeforeAttach: ['oops', 'ok'],
};

const list = (xs: readonly string[]): string => xs.map((x) => `'${x}'`).join(', ');

/**
 * Why value cannot be the variant key of the driver instance `who` (current: its variant object),
 * or null when it can.
 */
export function variantProblem(who: string, current: Variant, key: string, value: unknown): string | null {
  if (!Object.hasOwn(current, key)) {
    const keys = Object.keys(current);
    return `${who}: the driver has no variant '${key}' (${keys.length > 0 ? `its variants: ${keys.join(', ')}` : 'it has no variants'})`;
  }
  const cur = current[key];
  const choices = typeof cur === 'string' ? VARIANT_CHOICES[key] : undefined;
  if (choices) return choices.includes(value as string) ? null : `${who}: variant ${key} must be one of ${list(choices)}, got ${JSON.stringify(value) ?? String(value)}`;
  if (typeof value === typeof cur && (typeof value !== 'number' || Number.isFinite(value))) return null;
  const want = typeof cur === 'boolean' ? 'true or false' : typeof cur === 'number' ? 'a finite number' : 'a string';
  return `${who}: variant ${key} must be ${want}, got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`;
}
