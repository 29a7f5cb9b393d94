import { defineStore } from 'pinia';
import { reactive, watch } from 'vue';
import { loadJson, saveJson } from '../util/persist';

export type ViewTab = 'registers' | 'memory' | 'pagetables' | 'tlb' | 'timeline' | 'findings' | 'config';

export const VIEW_TABS: { id: ViewTab; label: string; key: string }[] = [
  { id: 'registers', label: 'Registers', key: '1' },
  { id: 'memory', label: 'Memory', key: '2' },
  { id: 'pagetables', label: 'Page tables', key: '3' },
  { id: 'tlb', label: 'TLB', key: '4' },
  { id: 'timeline', label: 'Timeline', key: '5' },
  { id: 'findings', label: 'Findings', key: '6' },
  { id: 'config', label: 'Config', key: '7' },
];

export interface Layout {
  /** Device tree width, px. */
  left: number;
  /** Script column width, px. */
  right: number;
  /** Output pane height in the script column, px. */
  output: number;
  tab: ViewTab;
}

const KEY = 'soc-console.layout';
export const DEFAULT_LAYOUT: Layout = { left: 230, right: 470, output: 240, tab: 'registers' };

/** Pane sizes and the open view, persisted so the workspace comes back as it was left. */
export const useLayoutStore = defineStore('layout', () => {
  const layout = reactive<Layout>(loadJson(KEY, DEFAULT_LAYOUT));
  watch(layout, (l) => saveJson(KEY, l), { deep: true });

  function apply(l: Partial<Layout>): void {
    const ok = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;
    if (ok(l.left)) layout.left = l.left;
    if (ok(l.right)) layout.right = l.right;
    if (ok(l.output)) layout.output = l.output;
    if (l.tab && VIEW_TABS.some((t) => t.id === l.tab)) layout.tab = l.tab;
  }

  return { layout, apply };
});
