/**
 * C driver → instrumented wasm, with the npm toolchain only: clang + wasm-ld compiled to
 * WebAssembly (@yowasp/clang) and binaryen (wasm-opt passes). The output's loads and stores are
 * hooked (instrument-memory) so DMA-visible memory goes through the CPU cache model, and
 * preemption-point imports can unwind and rewind the C stack (asyncify).
 *
 * Pure: sources and headers come in as text; caching and threads are the caller's business.
 */
import { ASYNCIFY_IMPORTS, RUNTIME_IMPORTS } from './abi';

export interface CompileInput {
  /** The driver source and the name diagnostics and __FILE__ use for it (the user's path). */
  source: string;
  file: string;
  /** -D flags (true: defined as 1; false: not defined). */
  defines: Record<string, string | number | boolean>;
  /** Extra include folders, each as relative path → text. */
  includes: { dir: string; files: Record<string, string> }[];
  /** resources/linux: relative path → text (soc/kapi.h, linux/*.h, lib/soc-kernel.c). */
  kapi: Record<string, string>;
}

export interface Diagnostic {
  file: string;
  line: number;
  column: number;
  severity: 'error' | 'warning' | 'note';
  message: string;
}

export type CompileOutput =
  | { ok: true; wasm: Uint8Array; warnings: Diagnostic[]; imports: string[] }
  | { ok: false; diagnostics: Diagnostic[]; log: string };

/** What the compiler's flags are; part of the cache key. */
export const CFLAGS = [
  '--target=wasm32',
  '-std=gnu11',
  '-O2',
  '-g0',
  '-ffreestanding',
  '-nostdlib',
  '-nostdinc',
  '-D__KERNEL__',
  '-fno-strict-aliasing',
  '-fno-delete-null-pointer-checks',
  '-fno-builtin-printf',
  '-mmutable-globals',
  '-mno-bulk-memory',
  '-fno-color-diagnostics',
  '-Werror=implicit-function-declaration',
  '-Werror=implicit-int',
  '-Werror=return-type',
  // iotlb_sync_map returned void before v6.8: the engine calls the table entry either way.
  '-Wno-error=incompatible-function-pointer-types',
  '-Wno-incompatible-function-pointer-types',
  '-Wno-unused-parameter',
];

export const LDFLAGS = ['--no-entry', '--allow-undefined', '--export-table', '--growable-table', '--export=__stack_pointer', '--export=__heap_base', '--export=kmalloc', '--export=kfree', '-z', 'stack-size=65536', '--stack-first'];

const DRV_DIR = 'drv';

function basename(p: string): string {
  const i = Math.max(p.lastIndexOf('/'), p.lastIndexOf('\\'));
  return i < 0 ? p : p.slice(i + 1);
}

/** A nested tree for the in-memory file system of the toolchain. */
type Tree = { [name: string]: Tree | string | Uint8Array };

function put(tree: Tree, path: string, text: string | Uint8Array): void {
  const parts = path.split('/').filter(Boolean);
  let t = tree;
  for (const p of parts.slice(0, -1)) {
    const next = t[p];
    if (next === undefined || typeof next === 'string' || next instanceof Uint8Array) t[p] = {};
    t = t[p] as Tree;
  }
  t[parts[parts.length - 1]!] = text;
}

/** clang's "file:line:col: severity: message" lines, with the tree's paths mapped back to the user's. */
export function parseDiagnostics(log: string, fileMap: (f: string) => string): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const line of log.split('\n')) {
    const m = /^(.*?):(\d+):(\d+): (fatal error|error|warning|note): (.*)$/.exec(line);
    if (m) {
      const sev = m[4] === 'fatal error' ? 'error' : (m[4] as Diagnostic['severity']);
      out.push({ file: fileMap(m[1]!), line: Number(m[2]), column: Number(m[3]), severity: sev, message: m[5]! });
    } else {
      const l = /^wasm-ld: error: (.*)$/.exec(line);
      if (l) out.push({ file: 'wasm-ld', line: 0, column: 0, severity: 'error', message: l[1]! });
    }
  }
  return out;
}

interface ClangModule {
  commands: Record<string, (args: string[], files: Tree, opts: { stderr: (b: Uint8Array | null) => void; stdout: (b: Uint8Array | null) => void; fetchProgress: () => void }) => Promise<Tree>>;
}

export async function compileDriver(input: CompileInput): Promise<CompileOutput> {
  const clang = (await import('@yowasp/clang')) as unknown as ClangModule;
  const name = basename(input.file);
  const tree: Tree = {};
  put(tree, `${DRV_DIR}/${name}`, input.source);
  for (const [p, text] of Object.entries(input.kapi)) put(tree, `kapi/${p}`, text);
  input.includes.forEach((inc, i) => {
    for (const [p, text] of Object.entries(inc.files)) put(tree, `inc${i}/${p}`, text);
  });
  const defs: string[] = [];
  for (const [k, v] of Object.entries(input.defines)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) return { ok: false, diagnostics: [{ file: input.file, line: 0, column: 0, severity: 'error', message: `bad define name '${k}'` }], log: '' };
    if (v === false) continue;
    defs.push(v === true ? `-D${k}=1` : `-D${k}=${String(v)}`);
  }
  const incFlags = input.includes.map((_, i) => `-Iinc${i}`);
  const fileMap = (f: string): string => {
    if (f === `${DRV_DIR}/${name}`) return input.file;
    const inc = /^inc(\d+)\/(.*)$/.exec(f);
    if (inc) return `${input.includes[Number(inc[1])]?.dir ?? ''}/${inc[2]}`;
    return f.replace(/^kapi\//, 'resources/linux/');
  };
  let log = '';
  const dec = new TextDecoder();
  const opts = { stderr: (b: Uint8Array | null) => void (b && (log += dec.decode(b))), stdout: (b: Uint8Array | null) => void (b && (log += dec.decode(b))), fetchProgress: () => undefined };
  const common = [...CFLAGS, '-Ikapi', `-I${DRV_DIR}`, ...incFlags, `-fmacro-prefix-map=${DRV_DIR}/=`, '-fmacro-prefix-map=kapi/lib/='];
  let files: Tree;
  try {
    // One clang run for both units: instantiating the compiler is most of a cold compile.
    files = await clang.commands['clang']!([...common, ...defs, '-c', `${DRV_DIR}/${name}`, 'kapi/lib/soc-kernel.c'], tree, opts);
  } catch {
    const diagnostics = parseDiagnostics(log, fileMap).filter((d) => d.severity === 'error');
    return { ok: false, diagnostics: diagnostics.length ? diagnostics : [{ file: input.file, line: 0, column: 0, severity: 'error', message: log.trim() || 'clang failed' }], log };
  }
  const warnings = parseDiagnostics(log, fileMap).filter((d) => d.severity === 'warning');
  log = '';
  try {
    files = await clang.commands['wasm-ld']!([...LDFLAGS, 'drv.o', 'kernel.o', '-o', 'drv.wasm'], { 'drv.o': files[name.replace(/\.c$/, '.o')]!, 'kernel.o': files['soc-kernel.o']! }, opts);
  } catch {
    return { ok: false, diagnostics: parseDiagnostics(log, fileMap).concat(log.includes('error') ? [] : [{ file: input.file, line: 0, column: 0, severity: 'error', message: log.trim() }]), log };
  }
  const linked = files['drv.wasm'] as Uint8Array;
  const unsupported = unsupportedSymbols(linked, input.source, input.file);
  if (unsupported.length > 0) return { ok: false, diagnostics: unsupported, log: '' };
  const wasm = await instrument(linked);
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(wasm)).map((i) => `${i.module}.${i.name}`);
  return { ok: true, wasm, warnings, imports };
}

/**
 * Functions the driver calls that neither it, our soc-kernel.c nor the runtime define (wasm-ld
 * left them as imports): each an error at the first line of the driver that names it.
 */
export function unsupportedSymbols(linked: Uint8Array, source: string, file: string): Diagnostic[] {
  const lines = source.split('\n');
  const out: Diagnostic[] = [];
  for (const i of WebAssembly.Module.imports(new WebAssembly.Module(linked))) {
    if (i.kind !== 'function') continue;
    const known = RUNTIME_IMPORTS[i.module as 'env' | 'soc'];
    if (known?.includes(i.name)) continue;
    const re = new RegExp(`\\b${i.name.replace(/\$/g, '\\$')}\\b`);
    const at = lines.findIndex((l) => re.test(l));
    out.push({
      file,
      line: at + 1,
      column: at < 0 ? 0 : lines[at]!.search(re) + 1,
      severity: 'error',
      message: `unsupported kernel symbol '${i.name}': SoC Console's Linux API subset (resources/linux) does not provide it`,
    });
  }
  return out;
}

interface BinaryenModule {
  runPasses(passes: string[]): void;
  optimize(): void;
  emitBinary(): Uint8Array;
  dispose(): void;
}

interface Binaryen {
  readBinary(b: Uint8Array): BinaryenModule;
  setPassArgument(k: string, v: string | null): void;
  setOptimizeLevel(n: number): void;
  setShrinkLevel(n: number): void;
  setDebugInfo(on: boolean): void;
}

/** instrument-memory first (so asyncify's own buffer accesses stay unhooked), then asyncify, then -O2. */
export async function instrument(linked: Uint8Array): Promise<Uint8Array> {
  const binaryen = (await import('binaryen')).default as unknown as Binaryen;
  // Debug info on before reading, so the name section (C function names in traps) survives.
  binaryen.setDebugInfo(true);
  const m = binaryen.readBinary(linked);
  try {
    binaryen.setOptimizeLevel(1);
    binaryen.setShrinkLevel(0);
    m.runPasses(['instrument-memory']);
    binaryen.setPassArgument('asyncify-imports', ASYNCIFY_IMPORTS.join(','));
    m.runPasses(['asyncify']);
    binaryen.setPassArgument('asyncify-imports', null);
    m.optimize();
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}
