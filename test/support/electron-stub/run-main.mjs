/**
 * Loads the built main bundle (out/main/index.js) against the electron stub, runs the built
 * preload (out/preload/index.cjs) in a vm context wired to the IPC handlers main registered, and
 * prints one line `REPORT <json>` with what it saw. Used by test/unit/electron-bundle.test.ts.
 *
 * Environment: OUT_DIR (the build's out/), STUB_PACKAGED=1, STUB_USER_DATA, STUB_SAVE_PATH (what
 * the save dialog answers), ELECTRON_RENDERER_URL (passed through to the bundle).
 */
import { readFileSync } from 'node:fs';
import { register } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';

register('./hooks.mjs', import.meta.url);
const { record, config } = await import('./electron.mjs');

const out = process.env.OUT_DIR;
config.isPackaged = process.env.STUB_PACKAGED === '1';
config.userData = process.env.STUB_USER_DATA ?? '';
config.savePath = process.env.STUB_SAVE_PATH ?? '';

const fail = (e) => {
  console.log(`REPORT ${JSON.stringify({ fatal: e instanceof Error ? e.stack : String(e) })}`);
  process.exit(1);
};
process.on('unhandledRejection', fail);
process.on('uncaughtException', fail);

const until = async (what, ok) => {
  for (let i = 0; i < 400; i++) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`stub: timed out waiting for ${what}`);
};
const message = (e) => (e instanceof Error ? e.message : String(e));
const settle = (p) => Promise.resolve(p).then((value) => ({ value }), (e) => ({ error: message(e) }));

await import(pathToFileURL(join(out, 'main', 'index.js')).href);
await until('the window to load', () => record.appEvents.has('window-all-closed'));

const report = { windows: record.windows, loads: record.loads, channels: [...record.handlers.keys()] };

// Permission and header handlers, called as Chromium would.
report.permissionRequest = await new Promise((r) => (record.permissionRequest ? record.permissionRequest({}, 'media', r, {}) : r('no handler')));
report.permissionCheck = record.permissionCheck ? ['media', 'notifications', 'clipboard-read', 'hid'].map((p) => record.permissionCheck({}, p, 'file://', {})) : 'no handler';
report.devicePermission = record.devicePermission ? record.devicePermission({ deviceType: 'usb' }) : 'no handler';
report.headers = await new Promise((r) => (record.headers ? record.headers({ url: 'file:///x', responseHeaders: { 'X-Other': ['1'] } }, (res) => r(res.responseHeaders)) : r('no handler')));

// The renderer's frame URL: what the window loaded.
const load = record.loads[0];
const frameUrl = load.kind === 'file' ? pathToFileURL(load.target).href : load.target;
const invokeAs = (url) => (channel, ...args) => {
  const handler = record.handlers.get(channel);
  if (!handler) return Promise.reject(new Error(`No handler registered for '${channel}'`));
  // Electron clones what crosses IPC.
  return Promise.resolve().then(() => handler({ senderFrame: { url } }, ...structuredClone(args)));
};

const invoked = [];
const listeners = [];
const ipcRenderer = {
  invoke: (channel, ...args) => {
    invoked.push(channel);
    return invokeAs(frameUrl)(channel, ...args);
  },
  on: (channel) => void listeners.push(channel),
  removeListener: () => undefined,
};
const world = {};
const contextBridge = { exposeInMainWorld: (key, api) => void (world[key] = api) };
const preload = load && record.windows[0]?.webPreferences?.preload;
const code = readFileSync(preload, 'utf8');
const module = { exports: {} };
// A sandboxed preload gets require() for a few modules only; electron is the one it may use.
const sandbox = {
  module,
  exports: module.exports,
  require: (id) => {
    if (id === 'electron') return { contextBridge, ipcRenderer };
    throw new Error(`sandboxed preload cannot require ${id}`);
  },
};
vm.runInNewContext(code, sandbox, { filename: preload });

const soc = world.soc ?? {};
report.socKeys = Object.keys(soc);
report.probes = [];
for (const method of report.socKeys.filter((k) => k !== 'onEvent')) {
  const before = invoked.length;
  // More arguments than any method takes: main's validation must refuse, naming the method.
  const r = await settle(soc[method]('a1', 'a2', 'a3', 'a4', 'a5', 'a6'));
  report.probes.push({ method, channels: invoked.slice(before), ...r });
}
report.listPresets = await settle(soc.listPresets?.());
report.simTime = await settle(soc.simTime?.());
const off = soc.onEvent?.(() => undefined);
report.onEvent = { returnsUnsubscribe: typeof off === 'function', listens: listeners.slice() };
report.untrusted = await settle(invokeAs('https://evil.example/')('soc:call', 'listPresets', []));
if (process.env.ELECTRON_RENDERER_URL) report.devSender = await settle(invokeAs(process.env.ELECTRON_RENDERER_URL)('soc:call', 'listPresets', []));

const files = world.socFiles ?? {};
report.socFilesKeys = Object.keys(files);
const beforeFiles = invoked.length;
report.files = {
  openSession: await settle(files.openSession?.()),
  openConfig: await settle(files.openConfig?.()),
  badName: await settle(files.saveSession?.('{}', '../x.json')),
  save: await settle(files.saveSession?.('{"saved":true}', 'ok.socsession.json')),
  saveConfig: await settle(files.saveConfig?.('{"config":true}', 'ok.soc.json')),
};
report.fileChannels = invoked.slice(beforeFiles);

record.appEvents.get('window-all-closed')();
await until('app.quit', () => record.quit);
report.quit = record.quit;
console.log(`REPORT ${JSON.stringify(report)}`);
process.exit(0);
