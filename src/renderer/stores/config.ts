import { defineStore } from 'pinia';
import { ref, shallowRef } from 'vue';
import type { ConfigError } from '../../shared/session-api';
import { api } from '../api/client';
import { downloadText, failureText, nativeFiles, safeName, saveFailure } from '../util/files';
import { loadList, saveJson } from '../util/persist';
import { useLayoutStore, type Layout } from './layout';
import { SCRIPT_FILE, useScriptStore } from './script';
import { useSessionStore } from './session';

export interface RecentFile {
  file: string;
  /** The text as last opened or saved: in web mode a path cannot be reopened, so the text is kept. */
  text: string;
  at: number;
}

/** A saved session (*.socsession.json): config, scripts and layout. */
export interface SessionFile {
  format: 'soc-console-session';
  version: 1;
  savedAt: string;
  config: { file: string; text: string } | null;
  scripts: { name: string; source: string }[];
  layout: Layout;
}

const RECENT_KEY = 'soc-console.recent';
const MAX_RECENT = 8;
/** Larger configs are not kept in the recent list (localStorage is small). */
const MAX_RECENT_TEXT = 256 * 1024;

/** The config editor's buffer, recent files, and session save/load. */
export const useConfigStore = defineStore('config', () => {
  const text = ref('');
  const file = ref('untitled.soc.json');
  const errors = shallowRef<ConfigError[]>([]);
  const status = ref('');
  const recent = ref<RecentFile[]>(loadList<RecentFile>(RECENT_KEY));
  /** The buffer differs from what the SoC was last built from. */
  const dirty = ref(false);

  function remember(f: string, t: string): void {
    if (t.length > MAX_RECENT_TEXT) return;
    recent.value = [{ file: f, text: t, at: Date.now() }, ...recent.value.filter((r) => r.file !== f)].slice(0, MAX_RECENT);
    saveJson(RECENT_KEY, recent.value);
  }

  /** Fill the editor with the config the SoC was built from. */
  async function pull(): Promise<void> {
    const c = await api.configText();
    errors.value = [];
    if (!c) return;
    text.value = c.text;
    file.value = c.file.split('/').pop() ?? c.file;
    dirty.value = false;
  }

  /**
   * The SoC was replaced: errors of an older attempt no longer apply, and an editor with no
   * unsaved edits follows the config the SoC now runs.
   */
  async function socChanged(): Promise<void> {
    if (errors.value.length) status.value = '';
    errors.value = [];
    if (!dirty.value && text.value) await pull();
  }

  function edit(t: string): void {
    text.value = t;
    dirty.value = true;
  }

  function open(name: string, t: string): void {
    text.value = t;
    file.value = name;
    dirty.value = true;
    errors.value = [];
    remember(name, t);
  }

  /** Build the SoC from the buffer. */
  async function apply(): Promise<boolean> {
    const r = await api.loadConfig(text.value, file.value);
    if (!r.ok) {
      errors.value = r.errors;
      status.value = `${r.errors.length} error(s)`;
      return false;
    }
    errors.value = [];
    status.value = `loaded ${r.name}`;
    dirty.value = false;
    remember(file.value, text.value);
    await useSessionStore().configLoaded(r.name, r.file);
    return true;
  }

  async function save(): Promise<void> {
    const name = safeName(file.value.endsWith('.json') ? file.value : `${file.value}.soc.json`);
    try {
      if (nativeFiles) {
        const saved = await nativeFiles.saveConfig(text.value, name);
        if (!saved) return;
        file.value = saved;
      } else downloadText(name, text.value);
    } catch (e) {
      status.value = saveFailure(name, e);
      return;
    }
    status.value = `saved ${file.value}`;
    remember(file.value, text.value);
  }

  /** Electron: the config editor's Open… through the native dialog. */
  async function openDialog(): Promise<void> {
    try {
      const f = await nativeFiles?.openConfig();
      if (f) open(f.name, f.text);
    } catch (e) {
      status.value = failureText(e);
    }
  }

  /** Ctrl+S: config as loaded, the script, and the layout, in one file. A failure is shown, never dropped. */
  async function saveSession(): Promise<void> {
    try {
      await writeSession();
    } catch (e) {
      status.value = saveFailure('the session', e);
    }
  }

  async function writeSession(): Promise<void> {
    const script = useScriptStore();
    const layout = useLayoutStore();
    const config = await api.configText();
    const s: SessionFile = {
      format: 'soc-console-session',
      version: 1,
      savedAt: new Date().toISOString(),
      config,
      scripts: [{ name: SCRIPT_FILE, source: script.source }],
      layout: { ...layout.layout },
    };
    const base = config ? (config.file.split('/').pop() ?? 'session').replace(/\.soc\.json$|\.json$/, '') : 'session';
    const name = `${safeName(base)}.socsession.json`;
    const body = JSON.stringify(s, null, 2);
    if (nativeFiles) {
      const saved = await nativeFiles.saveSession(body, name);
      status.value = saved ? `session saved as ${saved}` : '';
    } else {
      downloadText(name, body);
      status.value = 'session saved';
    }
  }

  /** Electron: Open session… through the native dialog. */
  async function openSessionDialog(): Promise<void> {
    let f: { name: string; text: string } | null | undefined;
    try {
      f = await nativeFiles?.openSession();
    } catch (e) {
      status.value = failureText(e);
      return;
    }
    if (f) await loadSession(f.name, f.text);
  }

  async function loadSession(name: string, t: string): Promise<void> {
    let s: SessionFile;
    try {
      s = JSON.parse(t) as SessionFile;
    } catch (e) {
      status.value = `${name}: not JSON (${(e as Error).message})`;
      return;
    }
    if (s.format !== 'soc-console-session') {
      status.value = `${name}: not a SoC Console session`;
      return;
    }
    const script = useScriptStore();
    const main = s.scripts?.find((x) => x.name === SCRIPT_FILE) ?? s.scripts?.[0];
    if (main && typeof main.source === 'string') script.source = main.source;
    if (s.layout) useLayoutStore().apply(s.layout);
    if (s.config) {
      text.value = s.config.text;
      file.value = s.config.file.split('/').pop() ?? s.config.file;
      await apply();
    }
    status.value = `session ${name} loaded`;
  }

  return { text, file, errors, status, recent, dirty, pull, socChanged, edit, open, openDialog, apply, save, saveSession, openSessionDialog, loadSession };
});
