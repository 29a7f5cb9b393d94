import { defineStore } from 'pinia';
import { computed, ref, shallowRef } from 'vue';
import type { DomainInfo, IovaMap, IovaWalk, PtEntry, PtTable, TableRef } from '../../shared/session-api';
import { api } from '../api/client';

const refKey = (r: TableRef): string => `${r.level}:${r.pa}`;

/**
 * One visible row of the table tree, at its depth below the root: a descriptor, or a note heading a
 * table the walker cannot use as the domain's (memory it does not own, or not RAM at all).
 */
export type TreeRow =
  | { key: string; depth: number; entry: PtEntry; table: PtTable; expanded: boolean }
  | { key: string; depth: number; note: string; table: PtTable };

/**
 * The page-table view: the selected domain, its root and every expanded table (re-read on refresh,
 * so the tree follows the simulation), the IOVA map, and the last iova-to-phys walk.
 */
export const usePageTablesStore = defineStore('pagetables', () => {
  const domains = shallowRef<DomainInfo[]>([]);
  const domainId = ref<number | null>(null);
  const showInvalid = ref(false);
  /** Expanded tables by level:pa; the root is always there. */
  const expanded = ref<TableRef[]>([]);
  const tables = shallowRef(new Map<string, PtTable>());
  const map = shallowRef<IovaMap | null>(null);
  const walkInput = ref('');
  const walk = shallowRef<IovaWalk | null>(null);
  /** The descriptor picked in the tree (its fields are shown below it). */
  const selected = ref<string | null>(null);
  const error = ref<string | null>(null);

  const domain = computed(() => domains.value.find((d) => d.id === domainId.value) ?? null);

  /** Domains worth picking first: live ones, then those with tables, newest first. */
  function pickDefault(list: DomainInfo[]): number | null {
    const rank = (d: DomainInfo): number => (d.live ? 2 : 0) + (d.root ? 1 : 0);
    const best = [...list].sort((a, b) => rank(b) - rank(a) || b.id - a.id)[0];
    return best?.id ?? null;
  }

  async function refresh(): Promise<void> {
    const list = await api.domains();
    domains.value = list;
    if (domainId.value === null || !list.some((d) => d.id === domainId.value)) select(pickDefault(list));
    const d = list.find((x) => x.id === domainId.value);
    if (!d?.root) {
      tables.value = new Map();
      map.value = null;
      return;
    }
    const id = d.id;
    const all = showInvalid.value;
    const refs = [d.root, ...expanded.value];
    try {
      const [read, m] = await Promise.all([Promise.all(refs.map((r) => api.pageTable(id, { table: r, all }))), api.iovaMap(id)]);
      if (id !== domainId.value) return;
      tables.value = new Map(read.map((t) => [refKey(t.ref), t]));
      map.value = m;
      error.value = null;
      const w = walk.value;
      if (w && w.domain === id) walk.value = await api.walkIova(id, w.iova);
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e);
    }
  }

  function select(id: number | null): void {
    domainId.value = id;
    expanded.value = [];
    tables.value = new Map();
    map.value = null;
    walk.value = null;
    selected.value = null;
  }

  /** The SoC was replaced: its domains, tables and walk are gone with it. */
  function reset(): void {
    domains.value = [];
    select(null);
    walkInput.value = '';
    error.value = null;
  }

  /** Open or close a table entry's next-level table. */
  async function toggle(e: PtEntry): Promise<void> {
    const next = e.next;
    const id = domainId.value;
    if (!next || id === null) return;
    const key = refKey(next);
    if (expanded.value.some((r) => refKey(r) === key)) {
      // Closing a table closes everything opened below it.
      expanded.value = expanded.value.filter((r) => !(r.iova >= next.iova && r.iova < next.iova + e.span && r.level >= next.level));
      return;
    }
    expanded.value = [...expanded.value, next];
    const t = await api.pageTable(id, { table: next, all: showInvalid.value });
    if (id !== domainId.value) return;
    tables.value = new Map(tables.value).set(key, t);
  }

  /** The tree flattened in IOVA order: each expanded table's rows follow the entry pointing at it. */
  const rows = computed<TreeRow[]>(() => {
    const d = domain.value;
    const out: TreeRow[] = [];
    if (!d?.root) return out;
    const open = new Set(expanded.value.map(refKey));
    const add = (ref: TableRef, depth: number): void => {
      const t = tables.value.get(refKey(ref));
      if (!t) return;
      const note = [t.ownerProblem && `table ${'0x' + t.ref.pa.toString(16)} is not this domain's: ${t.ownerProblem}`, t.notRam && 'table is not in RAM: the walker gets a bus error'].filter(Boolean).join('; ');
      if (note) out.push({ key: `note:${refKey(ref)}`, depth, note, table: t });
      for (const e of t.rows) {
        const isOpen = e.next !== undefined && open.has(refKey(e.next));
        out.push({ key: `${ref.level}:${e.pa}`, depth, entry: e, table: t, expanded: isOpen });
        if (isOpen) add(e.next!, depth + 1);
      }
    };
    add(d.root, 0);
    return out;
  });

  async function runWalk(iova: number): Promise<void> {
    const id = domainId.value;
    if (id === null) return;
    walkInput.value = `0x${iova.toString(16)}`;
    try {
      const w = await api.walkIova(id, iova);
      if (id === domainId.value) walk.value = w;
      error.value = null;
    } catch (e) {
      error.value = e instanceof Error ? e.message : String(e);
    }
  }

  return { domains, domainId, domain, showInvalid, expanded, tables, map, walkInput, walk, selected, error, rows, refresh, select, reset, toggle, runWalk };
});
