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
