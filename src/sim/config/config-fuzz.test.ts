/**
 * Config fuzz (issue 12): random mutations of the four presets, through the load path the CLI uses
 * (Session.loadConfig, which the host's worker calls). Every case must end in a loaded SoC or in
 * errors that name the file and a path or line (the CLI's exit 2); never a throw (the CLI's
 * "internal error"), never a hang. A loaded SoC's modelled drivers must also probe, since every run
 * boots them. The seed is fixed so CI runs the same cases; the time bound is a hang guard, far
 * above the few milliseconds a case takes.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Session } from '../session';
import { Soc } from '../soc';
import { parseConfig } from './validate';

const PRESETS = ['sun50i-h6', 'rk3399', 'mt8183', 'arm64-smmu'].map((name) => {
  const file = `resources/socs/${name}.soc.json`;
  return { file, text: readFileSync(file, 'utf8') };
});
const RUNS = 5000;
const HANG_GUARD_MS = 2000;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path into a JSON value (objects and arrays included), in document order. */
function paths(v: Json, at: (string | number)[] = []): (string | number)[][] {
  const out = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

const interesting: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(0, 1, -1, 3, 4, 7, 1.5, 2 ** 29, 2 ** 31, 2 ** 32, 2 ** 40, 2 ** 53, 1e308, -1e308, 0x1000, 0xffffffff),
  fc.constantFrom<Json>('0x_', '0x', '', '0x10000', '0xFFFFFFFFFFFFFFFF', '4096', '1_000', '-1', 'v1', 'v2', 'v3', 'iommu0', 'dram', 'pd_iommu', 'bus-iommu', '__proto__', 'constructor'),
  fc.constantFrom<Json>(null, true, false, [], {}, [[]], { base: '0x0', size: '0x4' }, { name: 'x' }, { entries: 65537 }),
  fc.integer({ min: -5, max: 70_000 }),
  fc.string({ maxLength: 8 }),
);

type Mutation =
  | { kind: 'set'; at: number; value: Json }
  | { kind: 'delete'; at: number }
  | { kind: 'duplicate'; at: number; times: number }
  | { kind: 'addKey'; at: number; key: string; value: Json }
  | { kind: 'scale'; at: number; shift: number }
  | { kind: 'text'; at: number; op: 'cut' | 'insert' | 'drop'; ch: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: interesting }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), times: fc.constantFrom(1, 2, 70, 300) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('addKey' as const), at: fc.nat(), key: fc.constantFrom('options', 'colour', 'microTlbEntries', 'version', 'contextBanks', 'dtPath', 'resets', 'x'), value: interesting }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('scale' as const), at: fc.nat(), shift: fc.integer({ min: -12, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('text' as const), at: fc.nat(), op: fc.constantFrom('cut' as const, 'insert' as const, 'drop' as const), ch: fc.constantFrom('{', '[', '"', ',', '}', ':', '0', '\\') }) },
);

/** Apply mutations to a preset; the result is config text (text mutations may break its syntax). */
function mutate(base: string, ms: Mutation[]): string {
  const doc = JSON.parse(base) as Json;
  const textOps: Extract<Mutation, { kind: 'text' }>[] = [];
  for (const m of ms) {
    if (m.kind === 'text') {
      textOps.push(m);
      continue;
    }
    const all = paths(doc);
    const path = all[m.at % all.length]!;
    if (path.length === 0) continue;
    const parent = path.slice(0, -1).reduce<Json>((v, k) => (v as Record<string | number, Json>)[k]!, doc) as Record<string | number, Json> | Json[];
    const key = path[path.length - 1]!;
    const cur = (parent as Record<string | number, Json>)[key]!;
    if (m.kind === 'set') (parent as Record<string | number, Json>)[key] = structuredClone(m.value);
    else if (m.kind === 'delete') {
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key];
    } else if (m.kind === 'duplicate') {
      if (Array.isArray(parent)) parent.splice(key as number, 0, ...Array.from({ length: m.times }, () => structuredClone(cur)));
      else if (Array.isArray(cur)) cur.push(...Array.from({ length: m.times }, () => structuredClone(cur[0] ?? null)));
    } else if (m.kind === 'addKey') {
      if (cur && typeof cur === 'object' && !Array.isArray(cur)) cur[m.key] = structuredClone(m.value);
    } else if (m.kind === 'scale') {
      const n = typeof cur === 'number' ? cur : typeof cur === 'string' && /^0x[0-9a-f]+$/i.test(cur) ? parseInt(cur.slice(2), 16) : undefined;
      if (n === undefined) continue;
      const scaled = Math.floor(n * 2 ** m.shift);
      (parent as Record<string | number, Json>)[key] = typeof cur === 'number' ? scaled : `0x${scaled.toString(16)}`;
    }
  }
  let text = JSON.stringify(doc, null, 2);
  for (const t of textOps) {
    const at = t.at % (text.length + 1);
    if (t.op === 'cut') text = text.slice(0, at);
    else if (t.op === 'insert') text = text.slice(0, at) + t.ch + text.slice(at);
    else text = text.slice(0, at) + text.slice(at + 1);
  }
  return text;
}

describe('config fuzz', () => {
  it(`${RUNS} mutated presets each load or fail with a file and a path, fast, never an internal error`, () => {
    const session = new Session({ emit: () => {}, heartbeat: () => {} });
    const outcome = { loaded: 0, refused: 0, slowestMs: 0 };
    // The first load compiles the schema; that is not a case.
    expect(session.loadConfig(PRESETS[0]!.text, PRESETS[0]!.file).ok).toBe(true);
    fc.assert(
      fc.property(fc.nat({ max: PRESETS.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), (which, ms) => {
        const preset = PRESETS[which]!;
        const text = mutate(preset.text, ms);
        const t0 = performance.now();
        const r = session.loadConfig(text, preset.file);
        if (r.ok) {
          outcome.loaded++;
          // Every run boots the modelled drivers on the loaded SoC; a config that loads must let them
          // probe (a register window too small for the driver loaded before, then every run died).
          const parsed = parseConfig(text, preset.file);
          if (!parsed.ok) throw new Error('loaded once, refused the second time');
          void new Soc(parsed.config).kernel;
        } else {
          outcome.refused++;
          expect(r.errors.length).toBeGreaterThan(0);
          for (const e of r.errors) {
            expect(e.file).toBe(preset.file);
            expect(e.message.length).toBeGreaterThan(0);
            expect(e.path !== '' || e.line !== undefined || /more errors? not shown/.test(e.message)).toBe(true);
          }
        }
        const took = performance.now() - t0;
        outcome.slowestMs = Math.max(outcome.slowestMs, took);
        expect(took).toBeLessThan(HANG_GUARD_MS);
      }),
      { seed: 20261204, numRuns: RUNS },
    );
    console.log(`config fuzz: ${outcome.loaded} loaded, ${outcome.refused} refused, slowest ${outcome.slowestMs.toFixed(0)} ms`);
    // Both outcomes must be common, or the mutations test nothing.
    expect(outcome.loaded).toBeGreaterThan(RUNS / 10);
    expect(outcome.refused).toBeGreaterThan(RUNS / 3);
  });
});
