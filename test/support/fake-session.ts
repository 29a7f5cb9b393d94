/**
 * A small in-memory stand-in for the session host, for transport tests that must not depend on
 * the engine: it records calls and emits events on demand.
 */
import type { BlockMeta, IovaMap, IovaWalk, MomentRequest, MomentResult, PtTable, ReplayRequest, ReplayToResult, ScriptRunResult, SessionEvent, WalkCacheEntry } from '../../src/shared/session-api';
import type { WebSession } from '../../src/main/web/server';

const IOMMU_META: BlockMeta = {
  type: 'sun50i-h6',
  size: 0x10000,
  registers: [
    { name: 'ENABLE', offset: 0x20, width: 32, access: 'rw', reset: 0, readSideEffect: false, fields: [{ name: 'EN', lsb: 0, width: 1, access: 'rw', reset: 0, enum: { off: 0, on: 1 } }] },
    { name: 'TTB', offset: 0x50, width: 32, access: 'rw', reset: 0, readSideEffect: false, fields: [] },
  ],
};

export class FakeSession implements WebSession {
  readonly calls: { method: string; args: unknown[] }[] = [];
  private listeners = new Set<(e: SessionEvent) => void>();

  onEvent(listener: (e: SessionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(e: SessionEvent): void {
    for (const l of this.listeners) l(e);
  }

  private record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
  }

  async listPresets() {
    this.record('listPresets');
    return ['sun50i-h6'];
  }
  async loadPreset(name: string) {
    this.record('loadPreset', name);
    if (name !== 'sun50i-h6') throw new Error(`no preset named "${name}"`);
    return { ok: true as const, name: 'Allwinner H6', file: 'sun50i-h6.soc.json' };
  }
  async loadConfig(text: string, file: string) {
    this.record('loadConfig', text, file);
    return { ok: false as const, errors: [{ file, path: '', message: 'fake' }] };
  }
  async configText() {
    return null;
  }
  async listBlocks() {
    return [{ name: 'iommu0', kind: 'iommu' as const, model: 'sun50i-h6', base: 0x030f0000, size: 0x10000, powered: true }];
  }
  async describeBlock(block: string) {
    this.record('describeBlock', block);
    return IOMMU_META;
  }
  async readRegisters(block: string) {
    this.record('readRegisters', block);
    return [
      { name: 'ENABLE', offset: 0x20, value: 1 },
      { name: 'TTB', offset: 0x50, value: 0x4000_0000 },
    ];
  }
  async readRegister(block: string, reg: string) {
    this.record('readRegister', block, reg);
    return 0;
  }
  async writeRegister(block: string, reg: string, value: number) {
    this.record('writeRegister', block, reg, value);
  }
  async readMemory(pa: number, len: number) {
    this.record('readMemory', pa, len);
    return new Uint8Array(len).fill(0xab);
  }
  async runScript(req: { source: string; fileName: string }): Promise<ScriptRunResult> {
    this.record('runScript', req);
    return { runId: 1, ok: true, tests: [], durationMs: 1 };
  }
  async replayTo(req: ReplayRequest): Promise<ReplayToResult> {
    this.record('replayTo', req);
    return { ok: false, message: 'fake' };
  }
  async openMoment(req: MomentRequest): Promise<MomentResult> {
    this.record('openMoment', req);
    return { ok: false, message: 'fake' };
  }
  async stopScript() {}
  async scriptTypes() {
    return 'declare const soc: unknown;';
  }
  async findings() {
    return [];
  }
  async tlb() {
    return [];
  }
  async walkCache(): Promise<WalkCacheEntry[]> {
    return [];
  }
  async traceEvents() {
    return [];
  }
  async configSchema() {
    return '{}';
  }
  async simTime() {
    return 0;
  }
  async deviceTree() {
    return { name: 'fake', memory: [], iommus: [], devices: [], powerDomains: [], links: [], clocks: [], resets: [] };
  }
  async touchedFrames() {
    return [];
  }
  async dirtyLines() {
    return [];
  }
  async inspectIommu(iommu: string) {
    return { name: iommu, model: 'sun50i-h6', powered: true, now: 0, stats: { hits: 0, misses: 0, walks: 0, faults: 0 }, tlb: [], walkCache: [] };
  }
  async traceWindow() {
    return { events: [], seq: [], total: 0, extent: null };
  }
  async perfettoTrace() {
    return '{"traceEvents":[]}';
  }
  async domains() {
    return [];
  }
  async pageTable(domain: number): Promise<PtTable> {
    throw new Error(`no IOMMU domain with id ${domain}`);
  }
  async iovaMap(domain: number): Promise<IovaMap> {
    throw new Error(`no IOMMU domain with id ${domain}`);
  }
  async walkIova(domain: number): Promise<IovaWalk> {
    throw new Error(`no IOMMU domain with id ${domain}`);
  }
  async pageOwners() {
    return [];
  }
}
