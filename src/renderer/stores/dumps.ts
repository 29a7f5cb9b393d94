import { defineStore } from 'pinia';
import { shallowRef } from 'vue';
import type { BlockMeta } from '../../shared/session-api';

/** A register dump file (*.regdump.json): one block's values at one simulated moment. */
export interface RegisterDump {
  format: 'soc-console-regdump';
  version: 1;
  /** Label in the diff picker: file name or "snapshot N". */
  label: string;
  block: string;
  model: string;
  /** Simulated time, cycles. */
  time: number;
  values: { name: string; offset: number; value: number | null }[];
}

export function isRegisterDump(v: unknown): v is RegisterDump {
  const d = v as Partial<RegisterDump> | null;
  return !!d && d.format === 'soc-console-regdump' && typeof d.block === 'string' && Array.isArray(d.values) && typeof d.time === 'number';
}

export interface DumpDiffRow {
  name: string;
  offset: number;
  a: number | null;
  b: number | null;
  /** Fields whose value differs (when the block's metadata is known). */
  fields: { name: string; a: number; b: number }[];
}

/** Registers whose values differ between two dumps, by name, with the differing fields. */
export function diffDumps(a: RegisterDump, b: RegisterDump, meta: BlockMeta | null): DumpDiffRow[] {
  const bv = new Map(b.values.map((v) => [v.name, v]));
  const names = [...new Set([...a.values.map((v) => v.name), ...b.values.map((v) => v.name)])];
  const av = new Map(a.values.map((v) => [v.name, v]));
  const rows: DumpDiffRow[] = [];
  for (const name of names) {
    const x = av.get(name);
    const y = bv.get(name);
    const va = x?.value ?? null;
    const vb = y?.value ?? null;
    if (va === vb) continue;
    const regMeta = meta?.registers.find((r) => r.name === name);
    const fields =
      regMeta && va !== null && vb !== null
        ? regMeta.fields
            .map((f) => {
              const m = f.width >= 32 ? 0xffffffff : (1 << f.width) - 1;
              return { name: f.name, a: ((va >>> f.lsb) & m) >>> 0, b: ((vb >>> f.lsb) & m) >>> 0 };
            })
            .filter((f) => f.a !== f.b)
        : [];
    rows.push({ name, offset: (x ?? y)!.offset, a: va, b: vb, fields });
  }
  return rows.sort((p, q) => p.offset - q.offset);
}

/** Dumps taken or loaded in this session, for the diff. */
export const useDumpsStore = defineStore('dumps', () => {
  const dumps = shallowRef<RegisterDump[]>([]);

  function add(d: RegisterDump): void {
    dumps.value = [...dumps.value, d];
  }

  return { dumps, add };
});
