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
  /** The block `meta` and `values` describe: a view never pairs one block's layout with another's. */
  const shownBlock = ref<string | null>(null);
  const error = ref<string | null>(null);
  /** The first load from the host finished (until then the console shows a loading indicator). */
  const ready = ref(false);
  /**
   * Bumped whenever the SoC is replaced (a preset or config loaded here or in another window, a
   * restarted host reloaded): views drop what they kept of the old SoC when it changes.
   */
  const generation = ref(0);
  // Every read of the selected block fetches layout and values together, and only the newest
  // response is shown: an older one (a refresh overtaken by a select, or the other way round)
  // never leaves a layout from one SoC with the values of another.
  let readSeq = 0;

  const selectedBlock = computed(() => blocks.value.find((b) => b.name === selected.value) ?? null);

  const registers = computed<RegisterView[]>(() => {
    const m = meta.value;
    if (!m || shownBlock.value !== selected.value) return [];
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
    ready.value = true;
  }

  async function loadPreset(name: string): Promise<void> {
    await guard(async () => {
      const r = await api.loadPreset(name);
      if (!r.ok) {
        error.value = r.errors.map((e) => `${e.file}${e.path}: ${e.message}`).join('\n');
        return;
      }
      await configLoaded(r.name, r.file);
    });
  }

  /**
   * A config was loaded, here or elsewhere (config editor, session file, another window): follow
   * it. The host announces every load to every window, so this runs for each one.
   */
  async function configLoaded(name: string, file: string): Promise<void> {
    socName.value = name;
    configFile.value = file;
    preset.value = presets.value.find((p) => file.endsWith(`/${p}.soc.json`)) ?? '';
    generation.value++;
    await guard(reloadBlocks);
  }

  /**
   * After the transport reconnects: a restarted host has no config, so load the preset the user
   * had; a host that lived on keeps its state and only needs re-reading.
   */
  async function resync(): Promise<void> {
    await guard(async () => {
      const loaded = await api.configText();
      if (!loaded && preset.value) await loadPreset(preset.value);
      else if (loaded && loaded.file !== configFile.value) {
        // The host lived on but another window loaded a config meanwhile.
        await configLoaded(socName.value, loaded.file);
      } else await reloadBlocks();
    });
  }

  async function reloadBlocks(): Promise<void> {
    const [b, t, now] = await Promise.all([api.listBlocks(), api.deviceTree(), api.simTime()]);
    blocks.value = b;
    tree.value = t;
    simTime.value = now;
    socName.value = t.name;
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
      shownBlock.value = null;
      return;
    }
    await guard(async () => {
      const [m, v] = await Promise.all([api.describeBlock(name), api.readRegisters(name)]);
      if (seq !== readSeq) return;
      meta.value = m;
      values.value = v;
      shownBlock.value = name;
    });
  }

  /** Re-read blocks, tree, time and the selected block, marking the registers the last change changed. */
  async function refresh(): Promise<void> {
    await guard(async () => {
      const name = selected.value;
      const seq = ++readSeq;
      const [b, t, now, read] = await Promise.all([
        api.listBlocks(),
        api.deviceTree(),
        api.simTime(),
        name ? Promise.all([api.describeBlock(name), api.readRegisters(name)]).catch(() => null) : Promise.resolve(null),
      ]);
      blocks.value = b;
      tree.value = t;
      simTime.value = now;
      socName.value = t.name;
      if (seq !== readSeq) return;
      if (!b.some((x) => x.name === name)) {
        // The SoC changed under this window (its block is gone): pick one of the new SoC's.
        const first = b.find((x) => x.kind === 'iommu') ?? b[0];
        await select(first?.name ?? null);
        return;
      }
      if (!read) return;
      const [m, v] = read;
      if (shownBlock.value !== name || m.type !== meta.value?.type) {
        meta.value = m;
        values.value = v;
        previous.value = new Map();
        shownBlock.value = name;
        return;
      }
      // The baseline moves only when something changed: a refresh that finds the same values (a
      // periodic one, a second one after a write) keeps showing what the last change changed.
      const same = v.length === values.value.length && v.every((r, i) => r.value === values.value[i]?.value);
      if (same) return;
      previous.value = new Map(values.value.map((r) => [r.name, r.value]));
      meta.value = m;
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
    generation,
    shownBlock,
    ready,
    start,
    loadPreset,
    configLoaded,
    resync,
    reloadBlocks,
    select,
    refresh,
  };
});
