/**
 * Files in Electron: the renderer asks main for a native open or save dialog and gets text back (or
 * hands text over); it never sees a path beyond a file's base name, and has no fs access. Main
 * checks every message with the validators here. Web mode does without (uploads and downloads).
 */

/** A file the user picked: its base name (for titles and messages) and its text. */
export interface PickedFile {
  name: string;
  text: string;
}

/** What the preload exposes as window.socFiles. */
export interface SocFiles {
  /** Native open dialog for a session (*.socsession.json); null when cancelled. */
  openSession(): Promise<PickedFile | null>;
  /** Native save dialog, suggesting `name`; the saved file's base name, or null when cancelled. */
  saveSession(text: string, name: string): Promise<string | null>;
  /** Native open dialog for a SoC config; null when cancelled. */
  openConfig(): Promise<PickedFile | null>;
  /** Native save dialog for a SoC config's text, suggesting `name`. */
  saveConfig(text: string, name: string): Promise<string | null>;
  /** Menu commands main needs the renderer for (it holds the script and layout). */
  onMenu(cb: (m: MenuCommand) => void): () => void;
}

export type MenuCommand = { command: 'save-session' } | { command: 'open-session'; file: PickedFile };

export const FILE_CHANNELS = {
  openSession: 'files:open-session',
  saveSession: 'files:save-session',
  openConfig: 'files:open-config',
  saveConfig: 'files:save-config',
  menu: 'files:menu',
} as const;

/** The largest file the console reads or writes (a session carries a config and a script). */
export const MAX_FILE_TEXT = 16 * 1024 * 1024;

/**
 * Why a file of this size is not opened, or null. Checked before reading (web-mode uploads, files
 * in Electron): a larger config or session would not fit the session API's message limit anyway.
 */
export function fileTooLarge(name: string, size: number): string | null {
  // Rounded up: a file just over the limit must not read as "16.0 MiB".
  return size > MAX_FILE_TEXT ? `${name} is ${(Math.ceil(size / (1024 * 1024 / 10)) / 10).toFixed(1)} MiB; the console opens files of at most 16 MiB` : null;
}

/** A suggested file name: a base name only, nothing that could steer the dialog to a path. */
const plainName = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 255 && /^[A-Za-z0-9._ -]+$/.test(v) && !/^\.+$/.test(v);

/** Arguments of an open request: none. Returns an error message or null. */
export function validateOpen(args: unknown): string | null {
  return Array.isArray(args) && args.length === 0 ? null : 'expected no arguments';
}

/** Arguments of a save request: [text, suggested base name]. */
export function validateSave(args: unknown): { text: string; name: string } | string {
  if (!Array.isArray(args) || args.length !== 2) return 'expected 2 arguments';
  const [text, name] = args as unknown[];
  if (typeof text !== 'string' || text.length > MAX_FILE_TEXT) return 'argument 1 must be text of at most 16 MiB';
  if (!plainName(name)) return 'argument 2 must be a plain file name';
  return { text, name };
}

/** What main sends on FILE_CHANNELS.menu, checked again on the renderer side before it acts. */
export function isMenuCommand(m: unknown): m is MenuCommand {
  if (typeof m !== 'object' || m === null) return false;
  const c = m as Record<string, unknown>;
  if (c.command === 'save-session') return true;
  if (c.command !== 'open-session' || typeof c.file !== 'object' || c.file === null) return false;
  const f = c.file as Record<string, unknown>;
  return typeof f.name === 'string' && typeof f.text === 'string';
}
