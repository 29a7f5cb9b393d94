/**
 * QuickJS stacks ("    at fn (file:line:col)") point into the transpiled JavaScript; users read
 * TypeScript. These turn a sandbox error into a ScriptError located in the user's .ts file.
 */
import type { ScriptError } from '../../shared/session-api';
import type { ErrorInfo } from './marshal';
import type { SourceMap } from './source-map';

interface Frame {
  fn: string;
  file: string;
  line: number;
  column: number;
}

const FRAME = /^\s*at (.*?) \((.*):(\d+):(\d+)\)\s*$/;

function parseFrames(stack: string): Frame[] {
  const frames: Frame[] = [];
  for (const text of stack.split('\n')) {
    const m = FRAME.exec(text);
    if (m) frames.push({ fn: m[1]!, file: m[2]!, line: Number(m[3]), column: Number(m[4]) });
  }
  return frames;
}

/** The user's frames of a stack, in original positions (harness and native frames dropped). */
function userFrames(stack: string, fileName: string, map: SourceMap): Frame[] {
  return parseFrames(stack)
    .filter((f) => f.file === fileName)
    .map((f) => ({ ...f, ...(map.original(f) ?? { line: f.line, column: f.column }) }));
}

/**
 * Locate an error at its top user frame; `fallbackStack` (where the test was declared) serves
 * when none of the error's frames is the user's (errors raised asynchronously by the harness).
 */
export function locateError(info: ErrorInfo, fileName: string, map: SourceMap, fallbackStack = ''): ScriptError {
  let frames = userFrames(info.stack, fileName, map);
  if (frames.length === 0) frames = userFrames(fallbackStack, fileName, map).slice(0, 1);
  const top = frames[0];
  const stack = frames.map((f) => `    at ${f.fn} (${f.file}:${f.line}:${f.column})`).join('\n');
  return top ? { message: info.message, file: fileName, line: top.line, column: top.column, stack } : { message: info.message, file: fileName };
}

/** "file.ts:line:col" of the innermost user frame of a stack, in the user's .ts positions. */
export function userSite(stack: string, fileName: string, map: SourceMap): string | undefined {
  const top = userFrames(stack, fileName, map)[0];
  return top ? `${fileName}:${top.line}:${top.column}` : undefined;
}
