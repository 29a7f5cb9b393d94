import { defineStore } from 'pinia';
import { computed, shallowRef } from 'vue';
import type { Finding } from '../../shared/session-api';
import { api } from '../api/client';

/** Findings of the current SoC (the last run's, taken ones excepted), refreshed with the views. */
export const useFindingsStore = defineStore('findings', () => {
  const list = shallowRef<Finding[]>([]);
  const selected = shallowRef<Finding | null>(null);
  const errors = computed(() => list.value.filter((f) => f.severity === 'error').length);

  async function refresh(): Promise<void> {
    list.value = await api.findings();
    if (selected.value && !list.value.includes(selected.value)) selected.value = null;
  }

  return { list, selected, errors, refresh };
});

/** The script line a finding points at, when its `where` carries one. */
export function findingLine(f: Finding): number | null {
  const w = f.where ?? {};
  const line = w.line ?? w.scriptLine;
  if (typeof line === 'number') return line;
  // Kernel-layer call sites are "file:line" strings.
  const site = typeof w.callSite === 'string' ? w.callSite : typeof w.site === 'string' ? w.site : '';
  const m = /:(\d+)(?::\d+)?$/.exec(site);
  return m ? Number(m[1]) : null;
}
