import { defineStore } from 'pinia';
import { ref, shallowRef } from 'vue';
import type { IommuInspection, IommuStats } from '../../shared/session-api';
import { api } from '../api/client';

export interface StatsSample extends IommuStats {
  /** Simulated time of the sample, cycles. */
  t: number;
}

/** Samples kept per IOMMU for the rate plots. */
const MAX_SAMPLES = 240;

/** The TLB view: the selected IOMMU's checked caches, and its counters sampled over simulated time. */
export const useTlbStore = defineStore('tlb', () => {
  const iommu = ref<string | null>(null);
  const inspection = shallowRef<IommuInspection | null>(null);
  const samples = shallowRef(new Map<string, StatsSample[]>());

  async function refresh(): Promise<void> {
    const name = iommu.value;
    if (!name) return;
    const r = await api.inspectIommu(name);
    if (name !== iommu.value) return;
    inspection.value = r;
    record(r);
  }

  /** One sample per distinct moment; a new run (time went back) starts a new series. */
  function record(r: IommuInspection): void {
    const all = new Map(samples.value);
    let s = all.get(r.name) ?? [];
    const last = s[s.length - 1];
    if (last && r.now < last.t) s = [];
    if (last && r.now === last.t) s = s.slice(0, -1);
    s = [...s, { t: r.now, ...r.stats }].slice(-MAX_SAMPLES);
    all.set(r.name, s);
    samples.value = all;
  }

  /** The SoC was replaced: its IOMMUs and their samples are gone with it. */
  function reset(): void {
    iommu.value = null;
    inspection.value = null;
    samples.value = new Map();
  }

  return { iommu, inspection, samples, refresh, reset };
});
