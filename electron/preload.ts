/**
 * Preload (sandboxed, context-isolated): exposes exactly the session API as window.soc, and the
 * native file dialogs as window.socFiles. Every call is one IPC message that the main process
 * validates before it acts; no path or fs access crosses to the renderer.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { FILE_CHANNELS, isMenuCommand, type MenuCommand, type SocFiles } from '../src/shared/files-api';
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

const files: SocFiles = {
  openSession: () => ipcRenderer.invoke(FILE_CHANNELS.openSession),
  saveSession: (text, name) => ipcRenderer.invoke(FILE_CHANNELS.saveSession, text, name),
  openConfig: () => ipcRenderer.invoke(FILE_CHANNELS.openConfig),
  saveConfig: (text, name) => ipcRenderer.invoke(FILE_CHANNELS.saveConfig, text, name),
  onMenu: (cb: (m: MenuCommand) => void) => {
    const listener = (_e: IpcRendererEvent, m: unknown): void => {
      if (isMenuCommand(m)) cb(m);
    };
    ipcRenderer.on(FILE_CHANNELS.menu, listener);
    return () => ipcRenderer.removeListener(FILE_CHANNELS.menu, listener);
  },
};

contextBridge.exposeInMainWorld('soc', api);
contextBridge.exposeInMainWorld('socFiles', files);
