/**
 * Sharding through the real CLI: N=3 shard processes (`bringup --shard K/3`), then `bringup merge`,
 * give the report, exit code and failing-schedule output of one unsharded process.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'src', 'main', 'cli', 'bringup.ts');
const MT8183 = join(ROOT, 'resources', 'socs', 'mt8183.soc.json');

/** P2's race: exhaustive with failures, exhaustive clean, random with failures. */
const SCRIPT = `
async function race(tableInstall) {
  kernel.driver('iommu0').setVariant({ tableInstall });
  const d = await kernel.domainAlloc('iommu0');
  const pages = await kernel.allocPages(2);
  const iovas = [0x1000_0000, 0x1000_8000];
  return {
    threads: iovas.map((iova, i) => async () => expect(await kernel.map(d, iova, pages + i * 0x1000, 0x1000, 3)).toBe(0)),
    check: async () => {
      for (let i = 0; i < 2; i++) expect(await kernel.iovaToPhys(d, iovas[i])).toBe(pages + i * 0x1000);
    },
  };
}
test('store: exhaustive finds the lost mapping', async () => {
  const r = await explore({ ...(await race('store')), maxFailures: 3 });
  console.log('store', r.runs, r.pruned, r.complete, JSON.stringify(r.failures.map((f) => f.schedule)));
  expect(r.failures).toHaveLength(3);
  soc.takeFindings();
});
test('cmpxchg: exhaustive, clean', async () => {
  const r = await explore({ ...(await race('cmpxchg')), preemptionBound: 3 });
  console.log('cmpxchg', r.runs, r.complete);
  expect(r.complete).toBe(true);
});
test('store: random, a run budget', async () => {
  const r = await explore({ ...(await race('store')), mode: 'random', runs: 40, seed: 7, maxFailures: 4 });
  console.log('random', r.runs, JSON.stringify(r.failures.map((f) => f.schedule)));
  soc.takeFindings();
  expect(r.failures).toEqual([]);
});
`;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A JUnit report without its timings. */
const untimed = (xml: string): string => xml.replace(/ time="[^"]*"/g, '');

describe('bringup --shard K/N and merge', () => {
  it('three shards merge into the unsharded report and exit code', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'soc-shard-'));
    const script = join(dir, 'race.ts');
    writeFileSync(script, SCRIPT);
    const single = await cli(['--soc', MT8183, '--reporter', 'junit', '--explore-workers', '1', script]);
    const shards = await Promise.all([0, 1, 2].map((k) => cli(['--soc', MT8183, '--shard', `${k}/3`, '--out', join(dir, `shard-${k}.json`), script])));
    expect(shards.map((s) => s.code)).toEqual([0, 0, 0]);
    const merged = await cli(['merge', '--reporter', 'junit', ...[2, 0, 1].map((k) => join(dir, `shard-${k}.json`))]);
    for (const line of ['store 69 0 false', 'cmpxchg 315 true', 'random 10 ']) expect(merged.stderr).toContain(line);
    expect(merged.code).toBe(single.code);
    expect(merged.code).toBe(1);
    expect(untimed(merged.stdout)).toEqual(untimed(single.stdout));
    expect(merged.stderr).toEqual(single.stderr);
    const missing = await cli(['merge', join(dir, 'shard-0.json'), join(dir, 'shard-1.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('missing shard 2/3');
  }, 300_000);
});
