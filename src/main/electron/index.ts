/**
 * The Electron-only layer: window, IPC registration, menus, native file dialogs. Kept thin on
 * purpose; everything it calls (the session host, the renderer, the validators in
 * shared/files-api.ts, the recent list in recent.ts) is tested without Electron.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { app, BrowserWindow, dialog, ipcMain, Menu, session, type FileFilter, type IpcMainInvokeEvent, type MenuItemConstructorOptions, type Session } from 'electron';
import { FILE_CHANNELS, fileTooLarge, validateOpen, validateSave, type MenuCommand, type PickedFile } from '../../shared/files-api';
import { validateCall, type SessionMethod } from '../../shared/session-api';
import { writeFileAtomic } from '../host/files';
import { SessionHost } from '../host/host';
import { CSP } from '../web/csp';
import { addRecent, parseRecent, recentLabel, type RecentEntry, type RecentKind } from './recent';

const here = dirname(fileURLToPath(import.meta.url));
const rendererIndex = join(here, '../renderer/index.html');
/** The build emits the preload as CommonJS (electron.vite.config.ts): a sandboxed preload cannot be ESM. */
const preloadScript = join(here, '../preload/index.cjs');

const FILTERS: Record<RecentKind, FileFilter[]> = {
  config: [{ name: 'SoC config', extensions: ['json'] }],
  session: [{ name: 'SoC Console session', extensions: ['json'] }],
};

/** The dev server's URL (electron-vite dev); a packaged app loads only its own files, whatever the environment says. */
function devRendererUrl(): string | undefined {
  return app.isPackaged ? undefined : process.env.ELECTRON_RENDERER_URL || undefined;
}

function trustedSender(e: IpcMainInvokeEvent, dev: string | undefined): boolean {
  const url = e.senderFrame?.url ?? '';
  return url.startsWith(pathToFileURL(rendererIndex).href) || (dev !== undefined && url.startsWith(dev));
}

/**
 * The console needs no camera, microphone, notification, HID, serial or USB access: every
 * permission request and check is denied. HTTP responses (the dev server) get the web server's
 * CSP (frame-ancestors included, which a meta tag cannot carry) and X-Frame-Options; Chromium
 * runs no header hooks for file:// pages, which no web page may frame anyway.
 */
function lockDown(s: Session): void {
  s.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  s.setPermissionCheckHandler(() => false);
  s.setDevicePermissionHandler(() => false);
  s.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CSP], 'X-Frame-Options': ['DENY'] } });
  });
}

async function readText(path: string): Promise<string> {
  const tooLarge = fileTooLarge(basename(path), (await stat(path)).size);
  if (tooLarge) throw new Error(tooLarge);
  return readFile(path, 'utf8');
}

async function main(): Promise<void> {
  await app.whenReady();
  const dev = devRendererUrl();
  lockDown(session.defaultSession);
  const host = await SessionHost.create();
  const recentFile = join(app.getPath('userData'), 'recent-files.json');
  let recent: RecentEntry[] = parseRecent(await readFile(recentFile, 'utf8').catch(() => '[]'));

  ipcMain.handle('soc:call', async (e, method: unknown, args: unknown) => {
    if (!trustedSender(e, dev)) throw new Error('IPC from an untrusted frame');
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
      preload: preloadScript,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
    },
  });
  win.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
  win.webContents.on('will-navigate', (ev) => ev.preventDefault());
  host.onEvent((ev) => win.webContents.send('soc:event', ev));
  const tell = (m: MenuCommand): void => win.webContents.send(FILE_CHANNELS.menu, m);

  const remember = (path: string): void => {
    recent = addRecent(recent, path);
    app.addRecentDocument(path);
    void writeFileAtomic(recentFile, JSON.stringify(recent)).catch(() => undefined);
    buildMenu();
  };

  const pick = async (kind: RecentKind): Promise<string | null> => {
    const r = await dialog.showOpenDialog(win, { filters: FILTERS[kind], properties: ['openFile'] });
    return r.canceled ? null : (r.filePaths[0] ?? null);
  };

  const saveAs = async (kind: RecentKind, text: string, name: string): Promise<string | null> => {
    const r = await dialog.showSaveDialog(win, { defaultPath: name, filters: FILTERS[kind] });
    if (r.canceled || !r.filePath) return null;
    await writeFileAtomic(r.filePath, text);
    remember(r.filePath);
    return basename(r.filePath);
  };

  const openConfigAt = async (path: string): Promise<void> => {
    const loaded = await host.loadConfig(await readText(path), path);
    if (!loaded.ok) dialog.showErrorBox('Invalid SoC config', loaded.errors.map((x) => `${x.file}${x.line ? `:${x.line}` : ''} ${x.path}: ${x.message}`).join('\n'));
    else remember(path);
  };

  const readPicked = async (path: string): Promise<PickedFile> => {
    const file = { name: basename(path), text: await readText(path) };
    remember(path);
    return file;
  };

  /** Menu actions report their failures in a box: nobody awaits a click handler. */
  const reporting = (fn: () => Promise<void>) => () => {
    fn().catch((err: unknown) => dialog.showErrorBox('SoC Console', err instanceof Error ? err.message : String(err)));
  };

  const openRecent = (e: RecentEntry): Promise<void> => (e.kind === 'config' ? openConfigAt(e.path) : readPicked(e.path).then((file) => tell({ command: 'open-session', file })));

  // Renderer requests: each names no path; the dialog is the only way to one.
  const handle = <A extends unknown[]>(channel: string, validate: (args: unknown) => A | string, fn: (...a: A) => Promise<unknown>): void => {
    ipcMain.handle(channel, async (e, ...args: unknown[]) => {
      if (!trustedSender(e, dev)) throw new Error('IPC from an untrusted frame');
      const ok = validate(args);
      if (typeof ok === 'string') throw new Error(`${channel}: ${ok}`);
      return fn(...ok);
    });
  };
  const none = (args: unknown): [] | string => validateOpen(args) ?? [];
  const save = (args: unknown): [string, string] | string => {
    const v = validateSave(args);
    return typeof v === 'string' ? v : [v.text, v.name];
  };
  handle(FILE_CHANNELS.openSession, none, async () => {
    const path = await pick('session');
    return path ? readPicked(path) : null;
  });
  handle(FILE_CHANNELS.openConfig, none, async () => {
    const path = await pick('config');
    return path ? readPicked(path) : null;
  });
  handle(FILE_CHANNELS.saveSession, save, (text, name) => saveAs('session', text, name));
  handle(FILE_CHANNELS.saveConfig, save, (text, name) => saveAs('config', text, name));

  function buildMenu(): void {
    const recentItems: MenuItemConstructorOptions[] = recent.length
      ? [
          ...recent.map((e): MenuItemConstructorOptions => ({ label: `${e.kind === 'session' ? 'Session' : 'Config'}: ${recentLabel(e)}`, click: reporting(() => openRecent(e)) })),
          { type: 'separator' },
          {
            label: 'Clear Recent',
            click: () => {
              recent = [];
              app.clearRecentDocuments();
              void writeFileAtomic(recentFile, '[]').catch(() => undefined);
              buildMenu();
            },
          },
        ]
      : [{ label: 'No recent files', enabled: false }];
    Menu.setApplicationMenu(
      Menu.buildFromTemplate([
        {
          label: 'File',
          submenu: [
            {
              label: 'Open SoC Config…',
              accelerator: 'CmdOrCtrl+O',
              click: reporting(async () => {
                const path = await pick('config');
                if (path) await openConfigAt(path);
              }),
            },
            {
              label: 'Save SoC Config As…',
              accelerator: 'CmdOrCtrl+Shift+S',
              click: reporting(async () => {
                const current = await host.configText();
                if (current) await saveAs('config', current.text, basename(current.file));
              }),
            },
            { type: 'separator' },
            {
              label: 'Open Session…',
              accelerator: 'CmdOrCtrl+Shift+O',
              click: reporting(async () => {
                const path = await pick('session');
                if (path) tell({ command: 'open-session', file: await readPicked(path) });
              }),
            },
            // The renderer holds the script and layout: it builds the file and saves it through saveSession.
            { label: 'Save Session As…', click: () => tell({ command: 'save-session' }) },
            { type: 'separator' },
            { label: 'Recent', submenu: recentItems },
            { type: 'separator' },
            { role: 'quit' },
          ],
        },
        { role: 'editMenu' },
        { role: 'viewMenu' },
      ]),
    );
  }
  buildMenu();

  if (dev) await win.loadURL(dev);
  else await win.loadFile(rendererIndex);

  app.on('window-all-closed', () => {
    void host.dispose().then(() => app.quit());
  });
}

void main();
