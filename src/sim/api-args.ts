/**
 * Argument checks for the script API (soc, kernel): every call a script makes is checked here
 * against its signature before it reaches the engine, so a NaN address, a string register value or
 * a negative page count is a TypeError naming the call and the argument, never a hang or a page
 * handed out for nonsense. One table, one wrapper: the engine's own functions stay free of it.
 */

/** One parameter: its name in messages, what it must be, and the test. */
interface Param {
  name: string;
  expect: string;
  ok(v: unknown): boolean;
  optional?: boolean;
}

type Signature = readonly Param[];

const TWO64 = 2n ** 64n;

const p = (name: string, expect: string, ok: (v: unknown) => boolean): Param => ({ name, expect, ok });
const opt = (x: Param): Param => ({ ...x, optional: true });
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

const name = (n: string): Param => p(n, 'a non-empty string', (v) => typeof v === 'string' && v.length > 0 && v.length <= 1024);
const addr = (n: string): Param =>
  p(n, 'a non-negative integer address (number or bigint)', (v) => (isInt(v) && v >= 0) || (typeof v === 'bigint' && v >= 0n && v < TWO64));
const size = (n: string): Param => p(n, 'a non-negative integer', (v) => isInt(v) && v >= 0);
const positive = (n: string): Param => p(n, 'a positive integer', (v) => isInt(v) && v >= 1);
const integer = (n: string): Param => p(n, 'an integer', isInt);
/** A 32-bit register or memory value: 0 to 0xffffffff, or the same bits as a negative int32. */
const u32 = (n: string): Param => p(n, 'a 32-bit integer (-0x80000000 to 0xffffffff)', (v) => isInt(v) && v >= -0x8000_0000 && v <= 0xffff_ffff);
const bool = (n: string): Param => p(n, 'true or false', (v) => typeof v === 'boolean');
const fn = (n: string): Param => p(n, 'a function', (v) => typeof v === 'function');
const oneOf = (n: string, values: readonly string[]): Param => p(n, `one of ${values.map((x) => `'${x}'`).join(', ')}`, (v) => typeof v === 'string' && values.includes(v));
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const plainObject = (n: string): Param => p(n, 'an object', isObject);
const domain = (n: string): Param => p(n, 'a domain handle from kernel.domainAlloc', (v) => isObject(v) && isInt(v.id));
/** Bytes to write: a Uint8Array, or an array of integers 0 to 255. */
const bytes = (n: string): Param =>
  p(n, 'a Uint8Array or an array of integers from 0 to 255', (v) => v instanceof Uint8Array || (Array.isArray(v) && v.every((b) => isInt(b) && b >= 0 && b <= 255)));
const listOf = (n: string, expect: string, item: (v: unknown) => boolean): Param => p(n, expect, (v) => Array.isArray(v) && v.every(item));

const DIRECTIONS = ['to-device', 'from-device', 'bidirectional'];
const DOMAIN_TYPES = ['unmanaged', 'dma', 'dma-fq', 'identity', 'blocked'];
const LINK_FLAGS = ['pm-runtime', 'stateless', 'rpm-active'];
const dir = oneOf('dir', DIRECTIONS);
const dev = name('dev');

/** Signatures by call path; results of a call are under its path + '()'. */
const SIGNATURES: Record<string, Signature> = {
  'soc.iommus': [],
  'soc.devices': [],
  'soc.now': [],
  'soc.run': [size('cycles')],
  'soc.readl': [addr('pa')],
  'soc.writel': [u32('value'), addr('pa')],
  'soc.reg': [name('block'), name('reg')],
  'soc.setReg': [name('block'), name('reg'), u32('value')],
  'soc.mem.read': [addr('pa'), size('len')],
  'soc.mem.write': [addr('pa'), bytes('bytes')],
  'soc.mem.clean': [addr('pa'), size('len')],
  'soc.mem.invalidate': [addr('pa'), size('len')],
  'soc.iommu': [name('name')],
  'soc.iommu().tlb': [],
  'soc.iommu().walkCache': [],
  'soc.iommu().faults': [],
  'soc.iommu().stats': [],
  'soc.device': [name('name')],
  'soc.device().dma.read': [addr('iova'), size('len')],
  'soc.device().dma.write': [addr('iova'), bytes('bytes')],
  'soc.device().dma.copy': [addr('srcIova'), addr('dstIova'), size('len')],
  'soc.findings': [],
  'soc.takeFindings': [],
  'soc.blocks': [],
  'soc.irqs': [],
  'soc.irq': [size('line')],
  'soc.setPower': [name('domain'), bool('on')],
  'soc.reset': [name('line'), bool('asserted')],
  'soc.clock': [name('line'), bool('on')],

  'kernel.boot': [],
  'kernel.domainAlloc': [name('iommu'), opt(oneOf('type', DOMAIN_TYPES))],
  'kernel.domainFree': [domain('d')],
  'kernel.attachDevice': [domain('d'), dev],
  'kernel.detachDevice': [domain('d'), dev],
  'kernel.attachGroup': [domain('d'), name('group')],
  'kernel.detachGroup': [domain('d'), name('group')],
  'kernel.group': [dev],
  'kernel.map': [domain('d'), addr('iova'), addr('pa'), size('size'), size('prot')],
  'kernel.unmap': [domain('d'), addr('iova'), size('size')],
  'kernel.iovaToPhys': [domain('d'), addr('iova')],
  'kernel.allocPages': [opt(positive('count'))],
  'kernel.freePages': [addr('pa')],
  'kernel.dma.mapSingle': [dev, addr('pa'), size('size'), dir],
  'kernel.dma.unmapSingle': [dev, addr('iova'), size('size'), dir],
  'kernel.dma.allocCoherent': [dev, positive('size'), opt(p('opts', "an object like { backing: 'contiguous' | 'pages' }", (v) => isObject(v) && (v.backing === undefined || v.backing === 'contiguous' || v.backing === 'pages')))],
  'kernel.dma.freeCoherent': [dev, size('size'), addr('iova')],
  'kernel.dma.mapSg': [dev, listOf('segments', 'an array of { pa, len }', (s) => isObject(s) && addr('').ok(s.pa) && size('').ok(s.len)), dir],
  'kernel.dma.unmapSg': [dev, listOf('segments', 'an array of { iova, len } from mapSg', (s) => isObject(s) && size('').ok(s.iova) && size('').ok(s.len)), dir],
  'kernel.dma.syncSingleForCpu': [dev, addr('iova'), size('size'), dir],
  'kernel.dma.syncSingleForDevice': [dev, addr('iova'), size('size'), dir],
  'kernel.pm.getSync': [dev],
  'kernel.pm.put': [dev],
  'kernel.pm.putSync': [dev],
  'kernel.pm.putAutosuspend': [dev],
  'kernel.pm.getIfInUse': [dev],
  'kernel.pm.markLastBusy': [dev],
  'kernel.pm.status': [dev],
  'kernel.pm.state': [dev],
  'kernel.pm.setControl': [dev, oneOf('value', ['on', 'auto'])],
  'kernel.pm.setEnabled': [bool('enabled')],
  'kernel.pm.useAutosuspend': [dev, bool('use')],
  'kernel.pm.setAutosuspendDelay': [dev, integer('ms')],
  'kernel.deviceLinkAdd': [name('consumer'), name('supplier'), listOf('flags', `an array of ${LINK_FLAGS.map((f) => `'${f}'`).join(', ')}`, (f) => typeof f === 'string' && LINK_FLAGS.includes(f))],
  'kernel.deviceLinkDel': [name('consumer'), name('supplier')],
  'kernel.driver': [name('iommu')],
  'kernel.driver().setVariant': [plainObject('changes')],
  'kernel.kprobe': [name('symbol'), fn('handler')],
  'kernel.kretprobe': [name('symbol'), fn('handler')],
  'kernel.unregisterKprobe': [integer('id')],
  'kernel.kprobeSymbols': [],
  'kernel.handleIrq': [name('iommu')],
};

/**
 * The calls that return a value, not a promise: a bad argument throws at once. Every other call
 * returns a promise, which a bad argument rejects, as the engine's own errors do.
 */
const SYNC = new Set([
  'soc.iommus',
  'soc.devices',
  'soc.now',
  'soc.iommu',
  'soc.iommu().tlb',
  'soc.iommu().walkCache',
  'soc.iommu().faults',
  'soc.iommu().stats',
  'soc.device',
  'soc.findings',
  'soc.takeFindings',
  'soc.blocks',
  'soc.irqs',
  'soc.irq',
  'kernel.group',
  'kernel.pm.getIfInUse',
  'kernel.pm.markLastBusy',
  'kernel.pm.status',
  'kernel.pm.state',
  'kernel.pm.setEnabled',
  'kernel.driver',
  'kernel.driver().setVariant',
  'kernel.kprobeSymbols',
]);

/** What a script passed, for messages: short, and never the script's own object. */
function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number' || typeof v === 'boolean' || v === undefined || v === null) return String(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return typeof v === 'function' ? 'a function' : 'an object';
}

/** Throw a TypeError naming the call and the argument unless args fit the signature. */
export function checkArgs(path: string, sig: Signature, args: readonly unknown[]): void {
  if (args.length > sig.length) throw new TypeError(`${path}: takes ${sig.length} argument${sig.length === 1 ? '' : 's'}, got ${args.length}`);
  sig.forEach((param, i) => {
    const v = args[i];
    if (v === undefined && param.optional) return;
    if (!param.ok(v)) throw new TypeError(`${path}: argument ${i + 1} (${param.name}) must be ${param.expect}, got ${shown(v)}`);
  });
}

/** The signature of a call path, if the table has one. */
export function signatureOf(path: string): Signature | undefined {
  return Object.prototype.hasOwnProperty.call(SIGNATURES, path) ? SIGNATURES[path] : undefined;
}

/**
 * The API tree rooted at `root` ('soc', 'kernel') with every function checking its arguments first.
 * Objects a call returns that hold functions (soc.device(), kernel.driver()) are checked the same
 * way. A function the table does not know passes unchecked (api-args.test.ts lists none may).
 */
export function checkedApi<T extends object>(root: string, tree: T): T {
  return wrapTree(root, tree) as T;
}

function wrapTree(path: string, v: unknown): unknown {
  if (typeof v === 'function') return wrapFunction(path, v as (...a: unknown[]) => unknown);
  if (!isObject(v) || ArrayBuffer.isView(v) || !hasFunctions(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = wrapTree(`${path}.${k}`, x);
  return out;
}

function hasFunctions(o: Record<string, unknown>): boolean {
  return Object.values(o).some((x) => typeof x === 'function' || (isObject(x) && !ArrayBuffer.isView(x) && hasFunctions(x)));
}

function wrapFunction(path: string, f: (...a: unknown[]) => unknown): (...a: unknown[]) => unknown {
  const sig = signatureOf(path);
  const wrapped = {
    [f.name]: (...args: unknown[]): unknown => {
      if (sig) {
        try {
          checkArgs(path, sig, args);
        } catch (e) {
          if (SYNC.has(path)) throw e;
          return Promise.reject(e);
        }
      }
      return wrapTree(`${path}()`, f(...args));
    },
  }[f.name]!;
  return wrapped;
}
