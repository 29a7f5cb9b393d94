/**
 * Files in a browser: downloads through a blob link, uploads through a file input. In Electron the
 * preload's native dialogs (window.socFiles) take their place.
 */
import { fileTooLarge, type SocFiles } from '../../shared/files-api';

export const nativeFiles: SocFiles | null = window.socFiles ?? null;

export function downloadText(fileName: string, text: string, type = 'application/json'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  // The download has started from the URL by now; revoking later keeps slow browsers safe.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The picked file's text; throws, saying why, for a file larger than the console opens. */
export async function readInputFile(input: HTMLInputElement): Promise<{ name: string; text: string } | null> {
  const file = input.files?.[0];
  input.value = '';
  if (!file) return null;
  const tooLarge = fileTooLarge(file.name, file.size);
  if (tooLarge) throw new Error(tooLarge);
  return { name: file.name, text: await file.text() };
}

/** An error's message without the prefix Electron puts on errors thrown by main's IPC handlers. */
export function failureText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/^Error invoking remote method '[^']*': (Error: )?/, '');
}

/** What the UI says about a failed save. */
export function saveFailure(name: string, e: unknown): string {
  const m = failureText(e);
  return m.startsWith('cannot save ') ? m : `cannot save ${name}: ${m}`;
}

/** A file name safe for downloads: letters, digits, dot, dash, underscore. */
export const safeName = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80) || 'untitled';
