/**
 * A stand-in for the `electron` module: records what the built main bundle asks of Electron
 * (windows, loads, IPC handlers, permission and header handlers, menus, dialogs) so a test can
 * check it without the Electron binary. Driven by run-main.mjs.
 */
export const record = {
  windows: [],
  loads: [],
  handlers: new Map(),
  appEvents: new Map(),
  permissionRequest: null,
  permissionCheck: null,
  devicePermission: null,
  headers: null,
  errorBoxes: [],
  quit: false,
  sent: [],
};

/** What the test sets before the bundle loads. */
export const config = { isPackaged: false, userData: '', savePath: '' };

export const app = {
  get isPackaged() {
    return config.isPackaged;
  },
  whenReady: () => Promise.resolve(),
  getPath: (name) => {
    if (name !== 'userData') throw new Error(`stub: getPath(${name})`);
    return config.userData;
  },
  addRecentDocument: () => undefined,
  clearRecentDocuments: () => undefined,
  on: (event, fn) => void record.appEvents.set(event, fn),
  quit: () => void (record.quit = true),
};

export class BrowserWindow {
  constructor(options) {
    record.windows.push(options);
    this.webContents = {
      setWindowOpenHandler: (fn) => void (this.windowOpen = fn),
      on: () => undefined,
      send: (channel, ...args) => void record.sent.push({ channel, args }),
    };
  }
  async loadFile(path) {
    record.loads.push({ kind: 'file', target: path });
  }
  async loadURL(url) {
    record.loads.push({ kind: 'url', target: url });
  }
}

export const ipcMain = {
  handle: (channel, fn) => {
    if (record.handlers.has(channel)) throw new Error(`stub: a second handler for ${channel}`);
    record.handlers.set(channel, fn);
  },
};

export const Menu = {
  buildFromTemplate: (template) => template,
  setApplicationMenu: () => undefined,
};

export const dialog = {
  showOpenDialog: async () => ({ canceled: true, filePaths: [] }),
  showSaveDialog: async () => (config.savePath ? { canceled: false, filePath: config.savePath } : { canceled: true }),
  showErrorBox: (title, text) => void record.errorBoxes.push({ title, text }),
};

export const session = {
  defaultSession: {
    setPermissionRequestHandler: (fn) => void (record.permissionRequest = fn),
    setPermissionCheckHandler: (fn) => void (record.permissionCheck = fn),
    setDevicePermissionHandler: (fn) => void (record.devicePermission = fn),
    webRequest: { onHeadersReceived: (fn) => void (record.headers = fn) },
  },
};
