/** The sim worker: the engine's Session, exposed over Comlink. No Electron here. */
import { parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { Session } from '../../sim/session';
import type { WorkerApi, WorkerPush } from './worker-api';

if (!parentPort) throw new Error('sim-worker must run in a worker thread');
const port = parentPort;
const push = (m: WorkerPush): void => port.postMessage(m);

const session = new Session({
  emit: (socEvent) => push({ socEvent }),
  heartbeat: () => push({ heartbeat: Date.now() }),
});

const api: WorkerApi = {
  loadConfig: (text, file) => session.loadConfig(text, file),
  configText: () => session.configText(),
  listBlocks: () => session.listBlocks(),
  describeBlock: (b) => session.describeBlock(b),
  readRegisters: (b) => session.readRegisters(b),
  readRegister: (b, r) => session.readRegister(b, r),
  writeRegister: (b, r, v) => session.writeRegister(b, r, v),
  readMemory: (pa, len, view) => session.readMemory(pa, len, view),
  runScript: (req, runId) => session.runScript(req, runId),
  scriptTypes: () => session.scriptTypes(),
  findings: () => session.findings(),
  tlb: (name) => session.tlb(name),
  walkCache: (name) => session.walkCache(name),
  traceEvents: () => session.traceEvents(),
};

Comlink.expose(api, nodeEndpoint(port));
