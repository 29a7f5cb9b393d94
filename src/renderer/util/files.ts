/**
 * Files in a browser: downloads through a blob link, uploads through a file input. In Electron the
 * preload's native dialogs (window.socFiles) take their place.
 */
import type { SocFiles } from '../../shared/files-api';

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

export async function readInputFile(input: HTMLInputElement): Promise<{ name: string; text: string } | null> {
  const file = input.files?.[0];
  input.value = '';
  if (!file) return null;
  return { name: file.name, text: await file.text() };
}

/** A file name safe for downloads: letters, digits, dot, dash, underscore. */
export const safeName = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80) || 'untitled';
