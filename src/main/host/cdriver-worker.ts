/** A compile worker: one C driver build (sim/kernel/cdriver/toolchain.ts) off the sim worker's loop. */
import { parentPort, workerData } from 'node:worker_threads';
import { compileDriver, type CompileInput } from '../../sim/kernel/cdriver/toolchain';

if (!parentPort) throw new Error('cdriver-worker must run in a worker thread');
const port = parentPort;
compileDriver((workerData as { input: CompileInput }).input).then(
  (out) => port.postMessage({ out }),
  (e: unknown) => port.postMessage({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
);
