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
