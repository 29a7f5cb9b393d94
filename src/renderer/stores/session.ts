import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import type { BlockInfo, BlockMeta, RegisterValue } from '../../shared/session-api';
import { api } from '../api/client';
import { decodeFields, type DecodedField } from '../registers';

export const DEFAULT_PRESET = 'sun50i-h6';

export interface RegisterView {
  name: string;
  offset: number;
  access: string;
  /** null: not read, because reading has a side effect. */
  value: number | null;
  /** The value differs from the previous snapshot of this block. */
  changed: boolean;
  doc?: string;
  fields: DecodedField[];
}

/** The loaded SoC: presets, blocks, and the register snapshot of the selected block. */
export const useSessionStore = defineStore('session', () => {
  const presets = ref<string[]>([]);
  const preset = ref<string>('');
  const socName = ref<string>('');
  const blocks = shallowRef<BlockInfo[]>([]);
  const selected = ref<string | null>(null);
  const meta = shallowRef<BlockMeta | null>(null);
  const values = shallowRef<RegisterValue[]>([]);
  const previous = new Map<string, number | null>();
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
      const prev = previous.get(r.name);
      return {
        name: r.name,
        offset: r.offset,
        access: r.access,
        value,
        changed: prev !== undefined && prev !== value,
        doc: r.doc,
        fields: value === null ? [] : decodeFields(r, value),
      };
    });
  });

  async function start(): Promise<void> {
    await guard(async () => {
      presets.value = await api.listPresets();
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
      socName.value = r.name;
      await reloadBlocks();
    });
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
    blocks.value = await api.listBlocks();
    const keep = blocks.value.some((b) => b.name === selected.value);
    const first = blocks.value.find((b) => b.kind === 'iommu') ?? blocks.value[0];
    await select(keep ? selected.value : (first?.name ?? null), !keep);
  }

  async function select(name: string | null, fresh = true): Promise<void> {
    const seq = ++readSeq;
    if (fresh) previous.clear();
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

  /** Re-read the selected block, marking registers whose value changed since the last read. */
  async function refresh(): Promise<void> {
    await guard(async () => {
      blocks.value = await api.listBlocks();
      const name = selected.value;
      if (!name) return;
      const seq = ++readSeq;
      const v = await api.readRegisters(name);
      if (seq !== readSeq) return;
      previous.clear();
      for (const r of values.value) previous.set(r.name, r.value);
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

  return { presets, preset, socName, blocks, selected, selectedBlock, meta, registers, error, start, loadPreset, resync, reloadBlocks, select, refresh };
});
