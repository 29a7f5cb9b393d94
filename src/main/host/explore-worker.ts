/**
 * An explore helper worker: a Session of its own runs the job's script up to the job's explore
 * call and explores there what the calling worker sends (sim/check/explore-parallel.ts), until it
 * is terminated. Helpers start no helpers of their own.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ExploreJob, FromHelper, ToHelper } from '../../sim/check/explore-parallel';
import { Session } from '../../sim/session';
import { CDriverBuilder } from './cdriver-build';

if (!parentPort) throw new Error('explore-worker must run in a worker thread');
const port = parentPort;
const { job } = workerData as { job: ExploreJob };
const post = (m: FromHelper): void => port.postMessage(m);

const builder = new CDriverBuilder({ cacheDir: process.env['SOC_CONSOLE_CACHE_DIR'] });
const session = new Session({ emit: () => {}, heartbeat: () => {}, buildDriver: (req) => builder.build(req) });
const why = await session.serveExplore(job, { post, listen: (on) => port.on('message', (m: ToHelper) => on(m)) });
post({ type: 'error', message: why });
