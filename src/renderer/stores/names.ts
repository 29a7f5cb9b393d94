import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { BlockMeta } from '../../shared/session-api';
import { api } from '../api/client';
import { useSessionStore } from './session';

const PAGE = 0x1000;

/**
 * Names for addresses, in the hardware's words: an MMIO address as block.REGISTER (from the
 * register DSL's metadata), a RAM address as what owns its page (a page table of domain 2, a DMA
 * buffer). Looked up once and kept until the SoC changes; `version` ticks when a name arrives.
 */
export const useNamesStore = defineStore('names', () => {
  const metas = new Map<string, BlockMeta | null>();
  const owners = new Map<number, string | null>();
  const version = ref(0);

  function reset(): void {
    metas.clear();
    owners.clear();
    version.value++;
  }

  /** 'iommu0.TLB_FLUSH' for an MMIO address (asking for the layout the first time), or null. */
  function register(pa: number): string | null {
    const block = useSessionStore().blocks.find((b) => pa >= b.base && pa < b.base + b.size);
    if (!block) return null;
    if (!metas.has(block.name)) {
      metas.set(block.name, null);
      void api.describeBlock(block.name).then(
        (m) => {
          metas.set(block.name, m);
          version.value++;
        },
        () => undefined,
      );
      return block.name;
    }
    const reg = metas.get(block.name)?.registers.find((r) => r.offset === pa - block.base);
    return reg ? `${block.name}.${reg.name}` : block.name;
  }

  /** What owns the RAM page holding pa (the kernel's page allocator), or null. */
  function owner(pa: number): string | null {
    const page = pa - (pa % PAGE);
    if (!owners.has(page)) {
      owners.set(page, null);
      void api.pageOwners(page, PAGE).then(
        (list) => {
          owners.set(page, list[0]?.label ?? null);
          version.value++;
        },
        () => undefined,
      );
    }
    return owners.get(page) ?? null;
  }

  return { version, reset, register, owner };
});
