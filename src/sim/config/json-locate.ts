/**
 * Finds the line of a JSON pointer in JSON text, so config errors can name the line as well as the
 * field. A small tolerant scanner: it only needs to track where values start.
 */
export function lineOfPointer(text: string, pointer: string): number | undefined {
  const want = pointer === '' ? [] : pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let i = 0;
  const ws = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const lineAt = (pos: number): number => text.slice(0, pos).split('\n').length;
  const str = (): string => {
    let out = '';
    i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\') {
        out += text[i + 1];
        i += 2;
      } else out += text[i++];
    }
    i++;
    return out;
  };
  const skip = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        str();
        ws();
        i++;
        skip();
        ws();
        if (text[i++] !== ',') return;
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        skip();
        ws();
        if (text[i++] !== ',') return;
      }
    } else if (c === '"') str();
    else while (i < text.length && !/[,\]}\s]/.test(text[i]!)) i++;
  };
  // Descend along the pointer, returning the line where the addressed value starts.
  const find = (depth: number): number | undefined => {
    ws();
    if (depth === want.length) return lineAt(i);
    const key = want[depth]!;
    const c = text[i];
    if (c === '{') {
      i++;
      for (;;) {
        ws();
        if (text[i] !== '"') return undefined;
        const k = str();
        ws();
        i++;
        if (k === key) return find(depth + 1);
        skip();
        ws();
        if (text[i++] !== ',') return undefined;
      }
    }
    if (c === '[') {
      i++;
      const idx = Number(key);
      for (let n = 0; ; n++) {
        ws();
        if (n === idx) return find(depth + 1);
        skip();
        ws();
        if (text[i++] !== ',') return undefined;
      }
    }
    return undefined;
  };
  try {
    return find(0);
  } catch {
    return undefined;
  }
}

/**
 * Where JSON text first breaks the grammar, with a line and column: Node's JSON.parse message does
 * not always carry a position.
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
      if (text[i] === '\\') i++;
      else if (text.charCodeAt(i) < 0x20) fail('control character in string');
      i++;
    }
    if (i >= text.length) fail('unterminated string');
    i++;
  };
  const number = (): void => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m) fail(`unexpected ${describeAt()}`);
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
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
        value();
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
        value();
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
    value();
    ws();
    if (i < text.length) fail(`unexpected ${describeAt()} after the document`);
    return null;
  } catch (e) {
    const at = (e as { at: number }).at;
    const before = text.slice(0, at).split('\n');
    return { line: before.length, column: before[before.length - 1]!.length + 1, message: (e as Error).message };
  }
}
