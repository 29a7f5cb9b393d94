/**
 * Preload (sandboxed, context-isolated): exposes exactly the session API as window.soc. Every call
 * is one IPC message that the main process validates before it reaches the host.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { SESSION_METHODS, type SessionEvent } from '../src/shared/session-api';

const api: Record<string, unknown> = {};
for (const method of Object.keys(SESSION_METHODS)) {
  api[method] = (...args: unknown[]) => ipcRenderer.invoke('soc:call', method, args);
}
api.onEvent = (cb: (e: SessionEvent) => void) => {
  const listener = (_e: IpcRendererEvent, ev: SessionEvent): void => cb(ev);
  ipcRenderer.on('soc:event', listener);
  return () => ipcRenderer.removeListener('soc:event', listener);
};

contextBridge.exposeInMainWorld('soc', api);
