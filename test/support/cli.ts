/**
 * The CLI as a user runs it, `npm run bringup -- …` without npm's own start: the built CLI in a
 * child process (scripts/run-node.mjs rebuilds out/node first when the sources changed).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RUN_NODE = join(ROOT, 'scripts', 'run-node.mjs');

/** The built sim worker (out/node), as `npm run serve` and the CLI start it: no tsx in the loop. */
export const BUILT_SIM_WORKER = { js: new URL('../../out/node/sim-worker.js', import.meta.url) };

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { timeoutMs?: number; cwd?: string } = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [RUN_NODE, 'bringup', ...args], { cwd: opts.cwd ?? ROOT, timeout: opts.timeoutMs ?? 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
