import AjvImport from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import schema from '../../../resources/schema/soc.schema.json';
import { jsonSyntaxError, linesOfPointers } from './json-locate';
import { H6_MASTERS } from '../hw/sun50i-h6';
import { num, type SocConfig } from './types';

const PA_LIMIT = 2 ** 40;
/**
 * All TLB and walk-cache entries a SoC may build, summed over its IOMMUs: each cache alone is
 * bounded by the schema, but 64 IOMMUs of maximal caches would take seconds and half a GiB to build.
 */
export const MAX_TOTAL_CACHE_ENTRIES = 262144;
/** What the sum counts for a cache the config leaves at the model's default. */
const DEFAULT_CACHE_ENTRIES = 128;
const hex = (n: number): string => `0x${n.toString(16)}`;

export interface ConfigIssue {
  file: string;
  /** JSON pointer of the bad field ('' for the whole document). */
  path: string;
  message: string;
  line?: number;
}

export type ParseResult = { ok: true; config: SocConfig } | { ok: false; errors: ConfigIssue[] };

type AjvCtor = new (opts: Record<string, unknown>) => { compile(s: object): ValidateFunction };
// ajv is CommonJS; under ESM interop its class may sit on .default.
const Ajv = ((AjvImport as unknown as { default?: AjvCtor }).default ?? AjvImport) as unknown as AjvCtor;

let compiled: ValidateFunction | undefined;
function schemaValidator(): ValidateFunction {
  compiled ??= new Ajv({ allErrors: true, strict: false }).compile(schema);
  return compiled;
}

function describe(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  if (e.schemaPath.startsWith('#/definitions/num/')) return 'must be an integer from 0 to 2^40, or a hex string such as "0x1000"';
  switch (e.keyword) {
    case 'maxItems':
      return `at most ${String(p.limit)} entr${p.limit === 1 ? 'y' : 'ies'}`;
    case 'additionalProperties':
      return `unknown field "${String(p.additionalProperty)}"`;
    case 'required':
      return `missing required field "${String(p.missingProperty)}"`;
    case 'enum':
      return `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `must be ${JSON.stringify(p.allowedValue)}`;
    default:
      return e.message ?? e.keyword;
  }
}

/** At most this many errors are reported, then a count of the rest: a broken file must not flood the user. */
export const MAX_REPORTED_ERRORS = 50;
/** Larger config text is refused before parsing; a real SoC config is a few KiB. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** Parse and validate config text. Every error names the file, the JSON path and the line. */
export function parseConfig(text: string, file: string): ParseResult {
  if (text.length > MAX_CONFIG_BYTES) {
    return { ok: false, errors: [{ file, path: '', message: `config is ${text.length} characters; at most ${MAX_CONFIG_BYTES} are read`, line: 1 }] };
  }
  const syntax = jsonSyntaxError(text);
  if (syntax) {
    return { ok: false, errors: [{ file, path: '', message: `invalid JSON at ${syntax.line}:${syntax.column}: ${syntax.message}`, line: syntax.line }] };
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    // The scanner above accepts only what JSON.parse does; this is a backstop, never a crash.
    return { ok: false, errors: [{ file, path: '', message: `invalid JSON: ${(e as Error).message}`, line: 1 }] };
  }
  const v = schemaValidator();
  if (!v(data)) {
    // oneOf failures repeat per branch; keep the most specific message per path.
    const seen = new Map<string, { path: string; message: string }>();
    for (const e of v.errors ?? []) {
      if (e.keyword === 'oneOf' || e.keyword === 'if') continue;
      const path = e.instancePath + (e.keyword === 'additionalProperties' ? `/${escapeToken(String((e.params as { additionalProperty: string }).additionalProperty))}` : '');
      if (!seen.has(path)) seen.set(path, { path, message: describe(e) });
    }
    if (seen.size === 0) seen.set('', { path: '', message: 'does not match the schema' });
    return { ok: false, errors: located(text, file, [...seen.values()]) };
  }
  const config = data as SocConfig;
  const errors = semanticErrors(config);
  return errors.length ? { ok: false, errors: located(text, file, errors) } : { ok: true, config };
}

const escapeToken = (k: string): string => k.replace(/~/g, '~0').replace(/\//g, '~1');

/** The first MAX_REPORTED_ERRORS errors with their lines (found in one pass), then how many more. */
export function located(text: string, file: string, errors: { path: string; message: string }[]): ConfigIssue[] {
  const shown = errors.slice(0, MAX_REPORTED_ERRORS);
  const lines = linesOfPointers(text, shown.map((e) => e.path));
  const out: ConfigIssue[] = shown.map((e) => ({ file, path: e.path, message: e.message, line: lines.get(e.path) }));
  const more = errors.length - shown.length;
  if (more > 0) out.push({ file, path: '', message: `${more} more error${more > 1 ? 's' : ''} not shown` });
  return out;
}

/** Cross-field rules a schema cannot say: unique names, references, overlaps, alignment. */
function semanticErrors(c: SocConfig): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  const names = new Map<string, string>();
  const claim = (name: string, path: string): void => {
    const prev = names.get(name);
    if (prev) out.push({ path, message: `name "${name}" is already used at ${prev}` });
    else names.set(name, path);
  };
  const domains = new Set((c.powerDomains ?? []).map((d) => d.name));
  const clocks = new Set((c.clocks ?? []).map((d) => d.name));
  const resets = new Set((c.resets ?? []).map((d) => d.name));
  const windows: { base: number; size: number; path: string }[] = [];
  const addWindow = (base: number, size: number, path: string, what: string): void => {
    if (size <= 0) {
      out.push({ path: `${path}/size`, message: 'size must be greater than zero' });
      return;
    }
    if (base + size > PA_LIMIT) {
      out.push({ path: `${path}/size`, message: `${what} must end below 1 TiB (40-bit PA), not at ${hex(base + size)}` });
      return;
    }
    for (const w of windows) {
      if (base < w.base + w.size && w.base < base + size) out.push({ path: `${path}/base`, message: `overlaps ${w.path}` });
    }
    windows.push({ base, size, path });
  };
  c.memory.forEach((m, i) => {
    claim(m.name, `/memory/${i}/name`);
    const base = num(m.base);
    const size = num(m.size);
    if (base % 4096 !== 0) out.push({ path: `/memory/${i}/base`, message: 'must be 4 KiB aligned' });
    if (size % 4096 !== 0) out.push({ path: `/memory/${i}/size`, message: 'must be a multiple of 4 KiB' });
    addWindow(base, size, `/memory/${i}`, 'memory');
  });
  (c.powerDomains ?? []).forEach((d, i) => claim(d.name, `/powerDomains/${i}/name`));
  (c.clocks ?? []).forEach((d, i) => claim(d.name, `/clocks/${i}/name`));
  (c.resets ?? []).forEach((d, i) => claim(d.name, `/resets/${i}/name`));
  const checkRefs = (path: string, b: { powerDomain?: string; clocks?: string[]; resets?: string[] }): void => {
    if (b.powerDomain !== undefined && !domains.has(b.powerDomain)) out.push({ path: `${path}/powerDomain`, message: `no power domain named "${b.powerDomain}"` });
    (b.clocks ?? []).forEach((k, j) => {
      if (!clocks.has(k)) out.push({ path: `${path}/clocks/${j}`, message: `no clock named "${k}"` });
    });
    (b.resets ?? []).forEach((k, j) => {
      if (!resets.has(k)) out.push({ path: `${path}/resets/${j}`, message: `no reset line named "${k}"` });
    });
  };
  const iommus = new Map(c.iommus.map((m) => [m.name, m]));
  c.iommus.forEach((m, i) => {
    claim(m.name, `/iommus/${i}/name`);
    checkRefs(`/iommus/${i}`, m);
    m.reg.forEach((w, j) => {
      const base = num(w.base);
      const size = num(w.size);
      if (base % 4 !== 0) out.push({ path: `/iommus/${i}/reg/${j}/base`, message: 'must be 4-byte aligned' });
      if (size % 4 !== 0) out.push({ path: `/iommus/${i}/reg/${j}/size`, message: 'must be a multiple of 4 bytes' });
      addWindow(base, size, `/iommus/${i}/reg/${j}`, 'MMIO');
    });
    const irqBase = m.options?.contextIrqBase;
    if (typeof irqBase === 'number') {
      const banks = typeof m.options?.contextBanks === 'number' ? m.options.contextBanks : 8;
      if (irqBase + banks > 1020) out.push({ path: `/iommus/${i}/options/contextIrqBase`, message: `context bank interrupts ${irqBase}..${irqBase + banks - 1} go past GIC SPI 1019` });
    }
  });
  let cacheEntries = 0;
  c.iommus.forEach((m, i) => {
    // Rockchip MMU instances each have their own caches; the H6 has a micro TLB per master port.
    const instances = m.model === 'rockchip' ? m.reg.length : 1;
    const micro = m.model === 'sun50i-h6' ? H6_MASTERS.length * (typeof m.options?.microTlbEntries === 'number' ? m.options.microTlbEntries : 16) : 0;
    const before = cacheEntries;
    cacheEntries += instances * ((m.tlb?.entries ?? DEFAULT_CACHE_ENTRIES) + (m.walkCache?.entries ?? DEFAULT_CACHE_ENTRIES)) + micro;
    if (before <= MAX_TOTAL_CACHE_ENTRIES && cacheEntries > MAX_TOTAL_CACHE_ENTRIES) {
      out.push({ path: `/iommus/${i}`, message: `the IOMMUs' TLBs and walk caches would hold ${cacheEntries} entries up to here; at most ${MAX_TOTAL_CACHE_ENTRIES} in all are built` });
    }
  });
  const ids = new Map<string, string>();
  c.devices.forEach((d, i) => {
    claim(d.name, `/devices/${i}/name`);
    checkRefs(`/devices/${i}`, d);
    if (d.iommu != null) {
      if (!iommus.has(d.iommu)) out.push({ path: `/devices/${i}/iommu`, message: `no IOMMU named "${d.iommu}"` });
      const key = `${d.iommu}#${d.masterId ?? 0}`;
      const prev = ids.get(key);
      if (prev) out.push({ path: `/devices/${i}/masterId`, message: `master ID ${d.masterId ?? 0} on ${d.iommu} is already used by ${prev}` });
      else ids.set(key, `/devices/${i}`);
    }
  });
  return out;
}

/** Pretty JSON for saving; stable key order as written. */
export function formatConfig(c: SocConfig): string {
  return `${JSON.stringify(c, null, 2)}\n`;
}
