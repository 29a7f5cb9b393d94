import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

test('a suite that fails to load or whose beforeAll throws counts as failed, by name, and the exit code agrees', () => {
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'test/fixtures/reporter/vitest.config.ts'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, CI: 'true' },
  });
  const lines = r.stdout.trim().split('\n');
  expect(lines.at(-1)).toBe('vitest: 1 passed, 2 failed, 2 skipped');
  expect(r.stdout).toMatch(/failed to run: .*load-error\.fixture\.ts: this suite cannot load/);
  expect(r.stdout).toMatch(/failed to run: .*hook-error\.fixture\.ts: the browser did not launch/);
  expect(r.status).toBe(1);
}, 60_000);
