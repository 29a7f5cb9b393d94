/**
 * The renderer's file paths in Node: the stores run as in the app, with window.soc, window.socFiles
 * and localStorage stubbed. A failed save or open must show in the status line, never vanish as
 * an unhandled rejection; an upload too large for the session API is refused before it is read.
 */
import { createPinia, setActivePinia } from 'pinia';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MAX_FILE_TEXT, type SocFiles } from '../../shared/files-api';

/** Main's errors as a renderer sees them: Electron prefixes what an IPC handler throws. */
const ipcError = (channel: string, message: string): Error => new Error(`Error invoking remote method '${channel}': Error: ${message}`);

const files: SocFiles = {
  openSession: () => Promise.reject(ipcError('files:open-session', 'huge.socsession.json is 20.0 MiB; the console opens files of at most 16 MiB')),
  saveSession: () => Promise.reject(ipcError('files:save-session', 'cannot save h6.socsession.json: the file is read-only')),
  openConfig: () => Promise.reject(ipcError('files:open-config', 'boom')),
  saveConfig: () => Promise.reject(ipcError('files:save-config', 'cannot save board.soc.json: no space left on the device')),
  onMenu: () => () => undefined,
};

type Store = ReturnType<typeof import('./config').useConfigStore>;
let useConfigStore: () => Store;
let readInputFile: typeof import('../util/files').readInputFile;

beforeAll(async () => {
  const stored = new Map<string, string>();
  // Every session call answers null (no config loaded): enough for the file paths.
  const soc = new Proxy({}, { get: (_t, key) => (key === 'onEvent' ? () => () => undefined : () => Promise.resolve(null)) });
  Object.assign(globalThis, {
    window: { soc, socFiles: files },
    localStorage: { getItem: (k: string) => stored.get(k) ?? null, setItem: (k: string, v: string) => void stored.set(k, v) },
  });
  ({ useConfigStore } = await import('./config'));
  ({ readInputFile } = await import('../util/files'));
});

beforeEach(() => {
  setActivePinia(createPinia());
});

describe('failed saves and opens show in the status line (Electron)', () => {
  it('Save session: the read-only refusal from main', async () => {
    const config = useConfigStore();
    await config.saveSession();
    expect(config.status).toBe('cannot save h6.socsession.json: the file is read-only');
  });

  it('Save config: the disk-full error from main', async () => {
    const config = useConfigStore();
    await config.save();
    expect(config.status).toBe('cannot save board.soc.json: no space left on the device');
  });

  it('Open session / Open config: main refusing the file', async () => {
    const config = useConfigStore();
    await config.openSessionDialog();
    expect(config.status).toBe('huge.socsession.json is 20.0 MiB; the console opens files of at most 16 MiB');
    await config.openDialog();
    expect(config.status).toBe('boom');
  });
});

describe('uploads (web mode)', () => {
  const input = (size: number) => {
    let read = false;
    const file = { name: 'big.socsession.json', size, text: async () => ((read = true), '{}') };
    return { el: { files: [file], value: 'C:\\fakepath\\big.socsession.json' } as unknown as HTMLInputElement, wasRead: () => read };
  };

  it('refuses a file over 16 MiB before reading it, saying so', async () => {
    const big = input(MAX_FILE_TEXT + 1);
    await expect(readInputFile(big.el)).rejects.toThrow('big.socsession.json is 16.1 MiB; the console opens files of at most 16 MiB');
    expect(big.wasRead()).toBe(false);
  });

  it('reads a file within the limit', async () => {
    const ok = input(MAX_FILE_TEXT);
    await expect(readInputFile(ok.el)).resolves.toEqual({ name: 'big.socsession.json', text: '{}' });
  });
});
