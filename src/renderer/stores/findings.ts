import { defineStore } from 'pinia';
import { computed, shallowRef } from 'vue';
import type { Finding } from '../../shared/session-api';
import { api } from '../api/client';
import { useMomentStore } from './moment';

/** Findings of the current SoC (the last run's, taken ones excepted), refreshed with the views. */
export const useFindingsStore = defineStore('findings', () => {
  const list = shallowRef<Finding[]>([]);
  const selected = shallowRef<Finding | null>(null);
  const errors = computed(() => list.value.filter((f) => f.severity === 'error').length);

  async function refresh(): Promise<void> {
    // At a moment the SoC holds only the findings raised by then; the list stays the run's, so a
    // finding opened stays in place (the view marks the ones not raised yet).
    if (useMomentStore().active) return;
    const next = await api.findings();
    list.value = next;
    const sel = selected.value;
    if (sel) selected.value = next.find((f) => findingKey(f) === findingKey(sel)) ?? null;
  }

  return { list, selected, errors, refresh };
});

/** Identity of a finding across refreshes (each refresh brings new objects). */
export function findingKey(f: Finding): string {
  return `${f.time}|${f.kind}|${f.replay?.event ?? ''}|${f.message}`;
}

/**
 * Where in the script a finding points: `where.line` is the call site "file.ts:line:col" of the
 * script call during which it was raised. Sites in other files (kernel code) are not the editor's.
 */
export function findingSite(f: Finding, file: string): { line: number; column: number } | null {
  const site = f.where?.line;
  if (typeof site !== 'string') return null;
  const m = /^(.*):(\d+):(\d+)$/.exec(site);
  if (!m || m[1] !== file) return null;
  return { line: Number(m[2]), column: Number(m[3]) };
}
