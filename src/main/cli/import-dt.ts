/**
 * `npm run bringup -- import-dt board.dtb [--report FILE] [-I DIR ...] [--memory BASE:SIZE] > board.soc.json`
 *
 * Reads a flattened device tree (or device tree source, compiled with cpp and dtc when they are on
 * the PATH), writes the SoC config on stdout and, on stderr, what could not be mapped. The config
 * is loaded the way `--soc` loads it before it is written, so what comes out loads.
 * Exit 0: written. 2: bad input (unreadable, not a device tree, no dtc for a .dts, or a config
 * that does not load, whose errors are listed).
 */
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { formatConfig } from '../../sim/config/validate';
import { FdtError, isFdt, parseFdt } from '../../sim/dt/fdt';
import { DtImportError, importDeviceTree, type DtImportReport } from '../../sim/dt/import';
import { Session } from '../../sim/session';

export interface ImportDtDeps {
  readBytes(path: string): Promise<Uint8Array>;
  writeFile(path: string, text: string): Promise<void>;
  /** Run a tool with stdin; null when it is not on the PATH. */
  run(tool: string, args: string[], input: Uint8Array): { status: number; stdout: Uint8Array; stderr: string } | null;
  stdout(text: string): void;
  stderr(text: string): void;
}

export const IMPORT_DT_USAGE = `usage: npm run bringup -- import-dt <board.dtb | board.dts> [--report FILE] [-I DIR ...] [--memory BASE:SIZE] > board.soc.json
  --report FILE: also write what was and was not mapped as JSON
  --memory BASE:SIZE: the RAM, for trees without a memory node (the bootloader adds it on many boards)
  -I DIR:        include directory for a .dts's #include and /include/ (e.g. the kernel's include/)`;

const HOW_TO_GET_DTC = 'install them (Debian/Ubuntu: apt-get install device-tree-compiler cpp; Fedora: dnf install dtc cpp), or compile the blob yourself: cpp -nostdinc -undef -x assembler-with-cpp -I include board.dts | dtc -@ -I dts -O dtb -o board.dtb';

class BadInput extends Error {}

export async function importDt(argv: string[], deps: ImportDtDeps): Promise<number> {
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { report: { type: 'string' }, include: { type: 'string', short: 'I', multiple: true }, memory: { type: 'string' } } });
    } catch (e) {
      throw new BadInput(e instanceof Error ? e.message : String(e));
    }
    const memory = parsed.values.memory === undefined ? undefined : memoryOption(parsed.values.memory);
    const [file, ...extra] = parsed.positionals;
    if (!file || extra.length > 0) throw new BadInput(file ? `one device tree at a time, got ${parsed.positionals.length}` : 'no device tree given');
    let bytes: Uint8Array;
    try {
      bytes = await deps.readBytes(file);
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw new BadInput(`${file}: cannot read the device tree${code === 'ENOENT' ? ': no such file' : `: ${e instanceof Error ? e.message : String(e)}`}`);
    }
    const blob = isFdt(bytes) ? bytes : compileSource(file, bytes, parsed.values.include ?? [], deps);
    let fdt;
    try {
      fdt = parseFdt(blob);
    } catch (e) {
      if (e instanceof FdtError) throw new BadInput(`${file}: not a valid device tree blob: ${e.message}`);
      throw e;
    }
    let imported;
    try {
      imported = importDeviceTree(fdt, file, memory ? { memory } : {});
    } catch (e) {
      if (e instanceof DtImportError) throw new BadInput(e.message);
      throw e;
    }
    const text = formatConfig(imported.config);
    const loaded = new Session({ emit: () => {}, heartbeat: () => {} }).loadConfig(text, '(imported config)');
    deps.stdout(text);
    deps.stderr(summary(imported.report));
    if (parsed.values.report) await deps.writeFile(parsed.values.report, `${JSON.stringify(imported.report, null, 2)}\n`);
    if (!loaded.ok) {
      for (const e of loaded.errors) deps.stderr(`import-dt: the imported config does not load: ${e.path || '(root)'}${e.line !== undefined ? ` (line ${e.line})` : ''}: ${e.message}\n`);
      return 2;
    }
    return 0;
  } catch (e) {
    if (!(e instanceof BadInput)) throw e;
    deps.stderr(`import-dt: ${e.message}\n${IMPORT_DT_USAGE}\n`);
    return 2;
  }
}

function memoryOption(text: string): { base: number; size: number } {
  const m = /^(0x[0-9a-f]+|\d+):(0x[0-9a-f]+|\d+)$/i.exec(text.trim());
  const base = m ? Number(m[1]) : Number.NaN;
  const size = m ? Number(m[2]) : Number.NaN;
  if (!m || size <= 0 || base + size > 2 ** 40) throw new BadInput(`--memory must be BASE:SIZE (e.g. 0x40000000:0x80000000) ending below 1 TiB, got '${text}'`);
  return { base, size };
}

/** Device tree source → blob with cpp (for #include) and dtc -@ (keeping labels for names). */
function compileSource(file: string, bytes: Uint8Array, includes: string[], deps: ImportDtDeps): Uint8Array {
  const text = new TextDecoder().decode(bytes);
  if (!/^\s*(\/dts-v1\/|\/\*|\/\/|#include|\/include\/)/.test(text)) throw new BadInput(`${file}: neither a device tree blob (no 0xd00dfeed magic) nor device tree source (no /dts-v1/)`);
  const dirs = [dirname(file), ...includes];
  let source = bytes;
  if (/^\s*#\s*(include|define|if)/m.test(text)) {
    const cpp = deps.run('cpp', ['-nostdinc', '-undef', '-x', 'assembler-with-cpp', '-D__DTS__', ...dirs.flatMap((d) => ['-I', d]), '-'], bytes);
    if (cpp === null) throw new BadInput(`${file}: device tree source with #include needs cpp, which is not on the PATH: ${HOW_TO_GET_DTC}`);
    if (cpp.status !== 0) throw new BadInput(`${file}: cpp failed:\n${cpp.stderr.trim()}`);
    source = cpp.stdout;
  }
  const dtc = deps.run('dtc', ['-@', '-q', '-I', 'dts', '-O', 'dtb', ...dirs.flatMap((d) => ['-i', d]), '-o', '-', '-'], source);
  if (dtc === null) throw new BadInput(`${file}: device tree source needs dtc, which is not on the PATH: ${HOW_TO_GET_DTC}`);
  if (dtc.status !== 0) throw new BadInput(`${file}: dtc failed:\n${dtc.stderr.trim()}`);
  return dtc.stdout;
}

function summary(r: DtImportReport): string {
  const count = (k: DtImportReport['mapped'][number]['kind']): number => r.mapped.filter((m) => m.kind === k).length;
  const lines = [`import-dt: ${r.source}: ${count('iommu')} IOMMUs, ${count('device')} masters, ${count('powerDomain')} power domains, ${count('clock')} clocks, ${count('reset')} reset lines; ${r.notMapped.length} not mapped`];
  for (const e of r.notMapped) lines.push(`import-dt: not mapped: ${e.dtPath}: ${e.what}: ${e.reason}`);
  for (const e of r.notes) lines.push(`import-dt: note: ${e.dtPath}: ${e.what}: ${e.reason}`);
  return `${lines.join('\n')}\n`;
}

export function importDtMain(argv: string[]): Promise<number> {
  return importDt(argv, {
    readBytes: async (p) => new Uint8Array(await readFile(p)),
    writeFile: (p, text) => writeFile(p, text, 'utf8'),
    run: (tool, args, input) => {
      const r = spawnSync(tool, args, { input, maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
      if (r.error && (r.error as { code?: string }).code === 'ENOENT') return null;
      if (r.error) return { status: -1, stdout: new Uint8Array(), stderr: r.error.message };
      return { status: r.status ?? -1, stdout: new Uint8Array(r.stdout), stderr: r.stderr.toString('utf8') };
    },
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
  });
}
