/**
 * Positions in JSON text, so config errors can name the line as well as the field. Both scanners
 * here make one pass over the text whatever the number of errors: a config with thousands of
 * errors must not take time quadratic in its size.
 */

/** Nesting deeper than this is refused: no SoC config needs it, and a recursive reader would overflow. */
export const MAX_JSON_DEPTH = 64;

const escapeToken = (k: string): string => k.replace(/~/g, '~0').replace(/\//g, '~1');

/**
 * The line where each of `pointers` (JSON pointers) starts in `text`, for the ones present. One
 * pass; `text` must be valid JSON no deeper than MAX_JSON_DEPTH (jsonSyntaxError says so first).
 */
export function linesOfPointers(text: string, pointers: Iterable<string>): Map<string, number> {
  const want = new Set(pointers);
  const out = new Map<string, number>();
  if (want.size === 0) return out;
  let i = 0;
  let line = 1;
  const ws = (): void => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 10) line++;
      else if (c !== 32 && c !== 9 && c !== 13) return;
      i++;
    }
  };
  const str = (): string => {
    const start = ++i;
    let escaped = false;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') {
        escaped = true;
        i += 2;
      } else i++;
    }
    const raw = text.slice(start, i++);
    return escaped ? (JSON.parse(`"${raw}"`) as string) : raw;
  };
  const value = (ptr: string): void => {
    ws();
    if (want.has(ptr)) out.set(ptr, line);
    const c = text[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (text[i] === close) {
        i++;
        return;
      }
      for (let n = 0; ; n++) {
        ws();
        let key = String(n);
        if (c === '{') {
          key = str();
          ws();
          i++; // ':'
        }
        value(`${ptr}/${escapeToken(key)}`);
        ws();
        if (text[i++] !== ',') return;
      }
    }
    if (c === '"') str();
    else while (i < text.length && !',]} \t\r\n'.includes(text[i]!)) i++;
  };
  value('');
  return out;
}

/** The line of one JSON pointer in `text` (see linesOfPointers). */
export function lineOfPointer(text: string, pointer: string): number | undefined {
  return linesOfPointers(text, [pointer]).get(pointer);
}

/**
 * Where JSON text first breaks the grammar, with a line and column: Node's JSON.parse message does
 * not always carry a position. Nesting beyond MAX_JSON_DEPTH is such a break, reported where it starts.
 */
export function jsonSyntaxError(text: string): { line: number; column: number; message: string } | null {
  let i = 0;
  const fail = (message: string): never => {
    throw Object.assign(new Error(message), { at: i });
  };
  const ws = (): void => {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  };
  const lit = (w: string): void => {
    if (text.startsWith(w, i)) i += w.length;
    else fail(`unexpected ${describeAt()}`);
  };
  const describeAt = (): string => (i >= text.length ? 'end of input' : `character ${JSON.stringify(text[i])}`);
  const string = (): void => {
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail('bad \\u escape in string');
          i += 4;
        } else if (i < text.length && !'"\\/bfnrt'.includes(text[i]!)) fail(`bad escape \\${text[i]} in string`);
      } else if (text.charCodeAt(i) < 0x20) fail('control character in string');
      i++;
    }
    if (i >= text.length) fail('unterminated string');
    i++;
  };
  const numberRe = /-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
  const number = (): void => {
    numberRe.lastIndex = i;
    const m = numberRe.exec(text);
    if (!m) fail(`unexpected ${describeAt()}`);
    i += m![0].length;
  };
  const value = (depth: number): void => {
    ws();
    const c = text[i];
    if ((c === '{' || c === '[') && depth >= MAX_JSON_DEPTH) fail(`nesting deeper than ${MAX_JSON_DEPTH} levels`);
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') fail(`expected a field name, found ${describeAt()}`);
        string();
        ws();
        if (text[i] !== ':') fail(`expected ':', found ${describeAt()}`);
        i++;
        value(depth + 1);
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else fail(`expected ',' or '}', found ${describeAt()}`);
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value(depth + 1);
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else fail(`expected ',' or ']', found ${describeAt()}`);
      }
    } else if (c === '"') string();
    else if (c === 't') lit('true');
    else if (c === 'f') lit('false');
    else if (c === 'n') lit('null');
    else number();
  };
  try {
    value(0);
    ws();
    if (i < text.length) fail(`unexpected ${describeAt()} after the document`);
    return null;
  } catch (e) {
    const at = (e as { at?: number }).at ?? i;
    let line = 1;
    let lineStart = 0;
    for (let k = text.indexOf('\n'); k !== -1 && k < at; k = text.indexOf('\n', k + 1)) {
      line++;
      lineStart = k + 1;
    }
    return { line, column: at - lineStart + 1, message: (e as Error).message };
  }
}
