import AjvImport from 'ajv';
import type { ErrorObject, ValidateFunction } from 'ajv';
import schema from '../../../resources/schema/soc.schema.json';
import { jsonSyntaxError, lineOfPointer } from './json-locate';
import { num, type SocConfig } from './types';

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
  switch (e.keyword) {
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

/** Parse and validate config text. Every error names the file, the JSON path and the line. */
export function parseConfig(text: string, file: string): ParseResult {
  const syntax = jsonSyntaxError(text);
  if (syntax) {
    return { ok: false, errors: [{ file, path: '', message: `invalid JSON at ${syntax.line}:${syntax.column}: ${syntax.message}`, line: syntax.line }] };
  }
  const data: unknown = JSON.parse(text);
  const v = schemaValidator();
  if (!v(data)) {
    // oneOf failures repeat per branch; keep the most specific message per path.
    const seen = new Map<string, ConfigIssue>();
    for (const e of v.errors ?? []) {
      if (e.keyword === 'oneOf' || e.keyword === 'if') continue;
      const path = e.instancePath + (e.keyword === 'additionalProperties' ? `/${String((e.params as { additionalProperty: string }).additionalProperty)}` : '');
      if (!seen.has(path)) seen.set(path, { file, path, message: describe(e), line: lineOfPointer(text, path) });
    }
    if (seen.size === 0) seen.set('', { file, path: '', message: 'does not match the schema' });
    return { ok: false, errors: [...seen.values()] };
  }
  const config = data as SocConfig;
  const errors = semanticErrors(config).map((e) => ({ file, ...e, line: lineOfPointer(text, e.path) }));
  return errors.length ? { ok: false, errors } : { ok: true, config };
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
  const windows: { base: number; size: number; path: string }[] = [];
  const addWindow = (base: number, size: number, path: string): void => {
    if (size <= 0) {
      out.push({ path: `${path}/size`, message: 'size must be greater than zero' });
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
    if (base + size > 2 ** 40) out.push({ path: `/memory/${i}/size`, message: 'memory must end below 1 TiB (40-bit PA)' });
    addWindow(base, size, `/memory/${i}`);
  });
  (c.powerDomains ?? []).forEach((d, i) => claim(d.name, `/powerDomains/${i}/name`));
  (c.clocks ?? []).forEach((d, i) => claim(d.name, `/clocks/${i}/name`));
  const checkRefs = (path: string, pd: string | undefined, cks: string[] | undefined): void => {
    if (pd !== undefined && !domains.has(pd)) out.push({ path: `${path}/powerDomain`, message: `no power domain named "${pd}"` });
    (cks ?? []).forEach((k, j) => {
      if (!clocks.has(k)) out.push({ path: `${path}/clocks/${j}`, message: `no clock named "${k}"` });
    });
  };
  const iommus = new Map(c.iommus.map((m) => [m.name, m]));
  c.iommus.forEach((m, i) => {
    claim(m.name, `/iommus/${i}/name`);
    checkRefs(`/iommus/${i}`, m.powerDomain, m.clocks);
    m.reg.forEach((w, j) => {
      const base = num(w.base);
      if (base % 4 !== 0) out.push({ path: `/iommus/${i}/reg/${j}/base`, message: 'must be 4-byte aligned' });
      addWindow(base, num(w.size), `/iommus/${i}/reg/${j}`);
    });
  });
  const ids = new Map<string, string>();
  c.devices.forEach((d, i) => {
    claim(d.name, `/devices/${i}/name`);
    checkRefs(`/devices/${i}`, d.powerDomain, d.clocks);
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
