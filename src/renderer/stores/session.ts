import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import type { BlockInfo, BlockMeta, DeviceTree, RegisterValue } from '../../shared/session-api';
import { api } from '../api/client';
import { decodeFields, type DecodedField } from '../registers';

export const DEFAULT_PRESET = 'sun50i-h6';

export interface RegisterView {
  name: string;
  offset: number;
  access: string;
  reset: number;
  /** Reading has a side effect: never read implicitly. */
  sideEffect: boolean;
  /** null: not read (side effect, or the block is powered off). */
  value: number | null;
  /** The value differs from the previous snapshot of this block. */
  changed: boolean;
  doc?: string;
  fields: DecodedField[];
}

/** The loaded SoC: presets, blocks, the device tree, time, and the register snapshot of the selected block. */
export const useSessionStore = defineStore('session', () => {
  const presets = ref<string[]>([]);
  const preset = ref<string>('');
  const socName = ref<string>('');
  const configFile = ref<string>('');
  const blocks = shallowRef<BlockInfo[]>([]);
  const tree = shallowRef<DeviceTree | null>(null);
  const simTime = ref(0);
  const selected = ref<string | null>(null);
  const meta = shallowRef<BlockMeta | null>(null);
  const values = shallowRef<RegisterValue[]>([]);
  /** Values before the last refresh, for change highlighting. */
  const previous = shallowRef(new Map<string, number | null>());
  const error = ref<string | null>(null);
  // Responses for an older selection must not overwrite a newer one.
  let readSeq = 0;

  const selectedBlock = computed(() => blocks.value.find((b) => b.name === selected.value) ?? null);

  const registers = computed<RegisterView[]>(() => {
    const m = meta.value;
    if (!m) return [];
    const byName = new Map(values.value.map((v) => [v.name, v.value]));
    return m.registers.map((r) => {
      const value = r.readSideEffect ? null : (byName.get(r.name) ?? null);
      const prev = previous.value.get(r.name);
      return {
        name: r.name,
        offset: r.offset,
        access: r.access,
        reset: r.reset,
        sideEffect: r.readSideEffect,
        value,
        changed: prev !== undefined && prev !== null && value !== null && prev !== value,
        doc: r.doc,
        fields: decodeFields(r, value, prev ?? null),
      };
    });
  });

  async function start(): Promise<void> {
    await guard(async () => {
      presets.value = await api.listPresets();
      const loaded = await api.configText();
      if (loaded) {
        // The host kept a config (a renderer reload): show it rather than replacing it.
        configFile.value = loaded.file;
        preset.value = presets.value.find((p) => loaded.file.endsWith(`/${p}.soc.json`)) ?? '';
        await reloadBlocks();
        return;
      }
      const initial = presets.value.includes(DEFAULT_PRESET) ? DEFAULT_PRESET : presets.value[0];
      if (initial) await loadPreset(initial);
    });
  }

  async function loadPreset(name: string): Promise<void> {
    await guard(async () => {
      const r = await api.loadPreset(name);
      if (!r.ok) {
        error.value = r.errors.map((e) => `${e.file}${e.path}: ${e.message}`).join('\n');
        return;
      }
      preset.value = name;
      configFile.value = r.file;
      socName.value = r.name;
      await reloadBlocks();
    });
  }

  /** After a config was loaded elsewhere (config editor, session file): follow it. */
  async function configLoaded(name: string, file: string): Promise<void> {
    socName.value = name;
    configFile.value = file;
    preset.value = presets.value.find((p) => file.endsWith(`/${p}.soc.json`)) ?? '';
    await guard(reloadBlocks);
  }

  /**
   * After the transport reconnects: a restarted host has no config, so load the preset the user
   * had; a host that lived on keeps its state and only needs re-reading.
   */
  async function resync(): Promise<void> {
    await guard(async () => {
      if (preset.value && !(await api.configText())) await loadPreset(preset.value);
      else await reloadBlocks();
    });
  }

  async function reloadBlocks(): Promise<void> {
    const [b, t, now] = await Promise.all([api.listBlocks(), api.deviceTree(), api.simTime()]);
    blocks.value = b;
    tree.value = t;
    simTime.value = now;
    if (!socName.value) socName.value = t.name;
    const keep = blocks.value.some((x) => x.name === selected.value && x.kind === 'iommu');
    const first = blocks.value.find((x) => x.kind === 'iommu') ?? blocks.value[0];
    await select(keep ? selected.value : (first?.name ?? null), !keep);
  }

  async function select(name: string | null, fresh = true): Promise<void> {
    const seq = ++readSeq;
    if (fresh) previous.value = new Map();
    selected.value = name;
    if (!name) {
      meta.value = null;
      values.value = [];
      return;
    }
    await guard(async () => {
      const [m, v] = await Promise.all([api.describeBlock(name), api.readRegisters(name)]);
      if (seq !== readSeq) return;
      meta.value = m;
      values.value = v;
    });
  }

  /** Re-read blocks, tree, time and the selected block, marking the registers the last change changed. */
  async function refresh(): Promise<void> {
    await guard(async () => {
      const name = selected.value;
      const seq = ++readSeq;
      const [b, t, now, v] = await Promise.all([api.listBlocks(), api.deviceTree(), api.simTime(), name ? api.readRegisters(name) : Promise.resolve(null)]);
      blocks.value = b;
      tree.value = t;
      simTime.value = now;
      if (seq !== readSeq || !v) return;
      // The baseline moves only when something changed: a refresh that finds the same values (a
      // periodic one, a second one after a write) keeps showing what the last change changed.
      const same = v.length === values.value.length && v.every((r, i) => r.value === values.value[i]?.value);
      if (same) return;
      previous.value = new Map(values.value.map((r) => [r.name, r.value]));
      values.value = v;
    });
  }

  /** Run a host call, showing its failure in the top bar instead of losing it. */
  async function guard(fn: () => Promise<void>): Promise<void> {
    try {
      error.value = null;
      await fn();
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e);
    }
  }

  return {
    presets,
    preset,
    socName,
    configFile,
    blocks,
    tree,
    simTime,
    selected,
    selectedBlock,
    meta,
    values,
    registers,
    error,
    start,
    loadPreset,
    configLoaded,
    resync,
    reloadBlocks,
    select,
    refresh,
  };
});
