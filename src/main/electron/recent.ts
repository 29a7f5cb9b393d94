/**
 * The File > Recent list: paths main opened or saved through its dialogs, newest first. Pure, so it
 * is tested without Electron; main persists it as JSON in the user-data folder.
 */
import { basename, dirname, isAbsolute } from 'node:path';

export type RecentKind = 'config' | 'session';

export interface RecentEntry {
  path: string;
  kind: RecentKind;
}

export const MAX_RECENT = 10;

/** Sessions are *.socsession.json; any other file the dialogs give is a SoC config. */
export const kindOf = (path: string): RecentKind => (path.endsWith('.socsession.json') ? 'session' : 'config');

export function addRecent(list: readonly RecentEntry[], path: string): RecentEntry[] {
  return [{ path, kind: kindOf(path) }, ...list.filter((e) => e.path !== path)].slice(0, MAX_RECENT);
}

/** The stored list, keeping only well-formed entries (the file may be old, edited or corrupt). */
export function parseRecent(text: string): RecentEntry[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(v)) return [];
  const out: RecentEntry[] = [];
  for (const e of v) {
    const path = (e as { path?: unknown } | null)?.path;
    if (typeof path === 'string' && isAbsolute(path) && !out.some((x) => x.path === path)) out.push({ path, kind: kindOf(path) });
  }
  return out.slice(0, MAX_RECENT);
}

/** A menu label: the file's name, with its folder for telling same-named files apart. */
export const recentLabel = (e: RecentEntry): string => `${basename(e.path)} — ${dirname(e.path)}`;
