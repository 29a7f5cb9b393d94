import { defineStore } from 'pinia';
import { ref, watch } from 'vue';
import { loadJson, saveJson } from '../util/persist';

export type MemoryMode = 'cpu' | 'ram' | 'both';
export const BYTES_PER_ROW = 16;

const KEY = 'soc-console.memory';

/** Where the memory view looks (kept across tab switches and reloads) and how it shows it. */
export const useMemoryStore = defineStore('memory', () => {
  const saved = loadJson(KEY, { address: 0x4000_0000, mode: 'both' as MemoryMode });
  /** First byte of the top row (row aligned). */
  const address = ref(saved.address - (saved.address % BYTES_PER_ROW));
  const mode = ref<MemoryMode>(saved.mode);
  /** A byte to point out (after go-to). */
  const mark = ref<number | null>(null);
  watch([address, mode], () => saveJson(KEY, { address: address.value, mode: mode.value }));

  function goTo(pa: number): void {
    mark.value = pa;
    address.value = Math.max(0, pa - (pa % BYTES_PER_ROW) - 4 * BYTES_PER_ROW);
  }

  return { address, mode, mark, goTo };
});
