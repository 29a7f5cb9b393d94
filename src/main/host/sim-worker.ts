/** The sim worker: the engine's Session, exposed over Comlink. No Electron here. */
import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { Session } from '../../sim/session';
import { transpileScript } from '../../sim/script/transpile';
import { WorkerExplorePool } from './explore-pool';
import { CDriverBuilder } from './cdriver-build';
import type { WorkerApi, WorkerPush } from './worker-api';

if (!parentPort) throw new Error('sim-worker must run in a worker thread');
const port = parentPort;
const push = (m: WorkerPush): void => port.postMessage(m);

const builder = new CDriverBuilder({ cacheDir: process.env['SOC_CONSOLE_CACHE_DIR'] });
const session = new Session({
  emit: (socEvent) => push({ socEvent }),
  heartbeat: (heartbeat) => push({ heartbeat }),
  explorePool: new WorkerExplorePool(),
  buildDriver: (req) => builder.build(req),
});

const api: WorkerApi = {
  loadConfig: async (text, file) => session.loadConfigAsync(text, file),
  configText: async () => session.configText(),
  listBlocks: async () => session.listBlocks(),
  describeBlock: async (b) => session.describeBlock(b),
  readRegisters: async (b) => session.readRegisters(b),
  readRegister: async (b, r) => session.readRegister(b, r),
  writeRegister: async (b, r, v) => session.writeRegister(b, r, v),
  readMemory: async (pa, len, view) => session.readMemory(pa, len, view),
  runScript: async (req, runId) => session.runScript(req, runId),
  checkScript: async (source, fileName) => {
    const t = transpileScript(source, fileName);
    return t.ok ? null : t.error;
  },
  replayTo: async (req) => session.replayTo(req),
  openMoment: async (req) => session.openMoment(req),
  scriptTypes: async () => session.scriptTypes(),
  findings: async () => session.findings(),
  tlb: async (name) => session.tlb(name),
  walkCache: async (name) => session.walkCache(name),
  traceEvents: async () => session.traceEvents(),
  simTime: async () => session.simTime(),
  deviceTree: async () => session.deviceTree(),
  touchedFrames: async (pa, len) => session.touchedFrames(pa, len),
  dirtyLines: async (pa, len) => session.dirtyLines(pa, len),
  inspectIommu: async (name) => session.inspectIommu(name),
  traceWindow: async (from, to, limit) => session.traceWindow(from, to, limit),
  perfettoTrace: async () => session.perfettoTrace(),
  domains: async () => session.domains(),
  pageTable: async (domain, query) => session.pageTable(domain, query),
  iovaMap: async (domain) => session.iovaMap(domain),
  walkIova: async (domain, iova) => session.walkIova(domain, iova),
  pageOwners: async (pa, len) => session.pageOwners(pa, len),
};

Comlink.expose(api, nodeEndpoint(port));
// Started: from now on the host's watchdog measures this worker's silence.
push({ ready: true });
