/**
 * The shipped example scripts (resources/examples), bundled with the renderer so both transports
 * offer them: each is loaded on demand as text. A script's `// soc: <preset>` header names the
 * preset it is written for.
 */
const sources = import.meta.glob<string>('../../../resources/examples/**/*.ts', { query: '?raw', import: 'default' });

export interface Example {
  /** File name without the folder, e.g. 'p1-rockchip-zap-order.ts'. */
  file: string;
  /** 'problems' (P1–P9), 'bring-up' (register-level) or 'upstream' (what mainline and historic upstream code do on the models). */
  group: 'problems' | 'bring-up' | 'upstream';
  load(): Promise<string>;
}

export const EXAMPLE_GROUPS: { id: Example['group']; label: string }[] = [
  { id: 'problems', label: 'Problems P1–P9' },
  { id: 'bring-up', label: 'Register-level bring-up' },
  { id: 'upstream', label: 'Upstream behaviour and hardware fidelity' },
];

export const EXAMPLES: Example[] = Object.entries(sources)
  .map(([path, load]): Example => {
    const file = path.split('/').pop() ?? path;
    const group = path.includes('/problems/') ? 'problems' : file.endsWith('-registers.ts') ? 'bring-up' : 'upstream';
    return { file, group, load };
  })
  .sort((a, b) => a.file.localeCompare(b.file, 'en', { numeric: true }));

/** The preset named by a `// soc: <name>` line among the script's leading comments, if any. */
export function socHeader(source: string): string | null {
  for (const line of source.split('\n')) {
    const t = line.trim();
    if (t === '') continue;
    if (!t.startsWith('//')) break;
    const m = /^\/\/\s*soc:\s*([\w.-]+)\s*$/.exec(t);
    if (m) return m[1]!;
  }
  return null;
}

/** The first sentence of the script's description (the comment after the header), for a tooltip. */
export function exampleSummary(source: string): string {
  const lines: string[] = [];
  for (const line of source.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('//')) break;
    if (/^\/\/\s*soc:/.test(t)) continue;
    const body = t.replace(/^\/\/\s?/, '');
    if (body === '' && lines.length) break;
    lines.push(body);
  }
  const text = lines.join(' ');
  const end = text.search(/\.\s/);
  return end > 0 ? text.slice(0, end + 1) : text;
}
