/**
 * The Electron-only layer: window, IPC registration, menus. Kept thin on purpose; everything it
 * calls (the session host, the renderer) is tested without Electron.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { app, BrowserWindow, dialog, ipcMain, Menu, type IpcMainInvokeEvent } from 'electron';
import { validateCall, type SessionApi, type SessionMethod } from '../../shared/session-api';
import { writeFileAtomic } from '../host/files';
import { SessionHost } from '../host/host';

const here = dirname(fileURLToPath(import.meta.url));
const rendererIndex = join(here, '../renderer/index.html');

function trustedSender(e: IpcMainInvokeEvent): boolean {
  const url = e.senderFrame?.url ?? '';
  const dev = process.env.ELECTRON_RENDERER_URL;
  return url.startsWith(pathToFileURL(rendererIndex).href) || (dev !== undefined && url.startsWith(dev));
}

async function main(): Promise<void> {
  await app.whenReady();
  const host = await SessionHost.create();

  ipcMain.handle('soc:call', async (e, method: unknown, args: unknown) => {
    if (!trustedSender(e)) throw new Error('IPC from an untrusted frame');
    const problem = validateCall(method, args);
    if (problem) throw new Error(problem);
    const fn = host[method as SessionMethod] as (...a: unknown[]) => Promise<unknown>;
    return fn.apply(host, args as unknown[]);
  });

  const win = new BrowserWindow({
    width: 1440,
    height: 900,
    title: 'SoC Console',
    backgroundColor: '#14161a',
    webPreferences: {
      preload: join(here, '../preload/index.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
    },
  });
  win.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
  win.webContents.on('will-navigate', (ev) => ev.preventDefault());
  host.onEvent((ev) => win.webContents.send('soc:event', ev));

  Menu.setApplicationMenu(
    Menu.buildFromTemplate([
      {
        label: 'File',
        submenu: [
          {
            label: 'Open SoC Config…',
            accelerator: 'CmdOrCtrl+O',
            click: async () => {
              const r = await dialog.showOpenDialog(win, { filters: [{ name: 'SoC config', extensions: ['json'] }], properties: ['openFile'] });
              const path = r.filePaths[0];
              if (r.canceled || !path) return;
              const loaded = await (host as SessionApi).loadConfig(await readFile(path, 'utf8'), path);
              if (!loaded.ok) dialog.showErrorBox('Invalid SoC config', loaded.errors.map((x) => `${x.file}${x.line ? `:${x.line}` : ''} ${x.path}: ${x.message}`).join('\n'));
            },
          },
          {
            label: 'Save SoC Config As…',
            accelerator: 'CmdOrCtrl+Shift+S',
            click: async () => {
              const current = await host.configText();
              if (!current) return;
              const r = await dialog.showSaveDialog(win, { defaultPath: current.file, filters: [{ name: 'SoC config', extensions: ['json'] }] });
              if (!r.canceled && r.filePath) await writeFileAtomic(r.filePath, current.text);
            },
          },
          { type: 'separator' },
          { role: 'quit' },
        ],
      },
      { role: 'editMenu' },
      { role: 'viewMenu' },
    ]),
  );

  if (process.env.ELECTRON_RENDERER_URL) await win.loadURL(process.env.ELECTRON_RENDERER_URL);
  else await win.loadFile(rendererIndex);

  app.on('window-all-closed', () => {
    void host.dispose().then(() => app.quit());
  });
}

void main();
