import { defineBlock, type BlockDecl, type FieldSpec } from '../regs/dsl';
import type { RkVersion } from './rockchip-format';

/** COMMAND register values (numbers, not bit masks). */
export const RK_CMD = {
  ENABLE_PAGING: 0,
  DISABLE_PAGING: 1,
  ENABLE_STALL: 2,
  DISABLE_STALL: 3,
  ZAP_CACHE: 4,
  PAGE_FAULT_DONE: 5,
  FORCE_RESET: 6,
} as const;

/** STATUS bits. */
export const RK_STATUS = {
  PAGING_ENABLED: 1 << 0,
  PAGE_FAULT_ACTIVE: 1 << 1,
  STALL_ACTIVE: 1 << 2,
  IDLE: 1 << 3,
  REPLAY_BUFFER_EMPTY: 1 << 4,
  PAGE_FAULT_IS_WRITE: 1 << 5,
  STALL_NOT_ACTIVE: 2 ** 31,
} as const;

/** INT_RAWSTAT / INT_CLEAR / INT_MASK / INT_STATUS bits. */
export const RK_INT = { PAGE_FAULT: 1 << 0, BUS_ERROR: 1 << 1 } as const;

/** AUTO_GATING bit 31, which the driver sets as a workaround for the MMU blocking on DTE fetches. */
export const RK_AUTO_GATING_DISABLE_FETCH_DTE_TIME_LIMIT = 2 ** 31;

/** The STATUS bits the model stores; the others are computed when read. */
export const RK_STATUS_STORED = RK_STATUS.PAGING_ENABLED | RK_STATUS.PAGE_FAULT_ACTIVE | RK_STATUS.STALL_ACTIVE | RK_STATUS.PAGE_FAULT_IS_WRITE;

const intFields = (access: 'ro' | 'wo' | 'rw'): FieldSpec[] => [
  { name: 'PAGE_FAULT', lsb: 0, width: 1, access, doc: 'A translation found an invalid DTE/PTE or lacked permission.' },
  { name: 'BUS_ERROR', lsb: 1, width: 1, access, doc: 'A table read hit a bus error.' },
];

/** DTE_ADDR layout: v1 holds a raw 4 KiB-aligned address, v2 the packed 40-bit entry encoding. */
function dteAddrFields(version: RkVersion): FieldSpec[] {
  if (version === 'v1') {
    return [
      { name: 'DT_BASE', lsb: 12, width: 20, doc: 'Directory table physical address bits 31:12.' },
      { name: 'VALID', lsb: 0, width: 1, doc: 'Written as 1 by the driver (mk_dtentries: the DTE encoding); the walker ignores it.' },
    ];
  }
  return [
    { name: 'DT_BASE', lsb: 12, width: 20, doc: 'Directory table physical address bits 31:12.' },
    { name: 'DT_BASE_35_32', lsb: 8, width: 4, doc: 'Directory table physical address bits 35:32.' },
    { name: 'DT_BASE_39_36', lsb: 4, width: 4, doc: 'Directory table physical address bits 39:36.' },
    { name: 'VALID', lsb: 0, width: 1, doc: 'Written as 1 by the driver (same encoding as a DTE).' },
  ];
}

function buildDecl(version: RkVersion): BlockDecl {
  return defineBlock({
    type: `rockchip-iommu-${version}`,
    // The smallest RK3399 window (VPU, VDEC) is 0x40 bytes; larger windows decode the same registers.
    size: 0x40,
    doc: `One Rockchip MMU instance (${version} entry format). An IOMMU may have several instances walking the same tables.`,
    regs: [
      { name: 'DTE_ADDR', offset: 0x00, fields: dteAddrFields(version), doc: 'Directory table address. Reads 0 after FORCE_RESET.' },
      {
        name: 'STATUS',
        offset: 0x04,
        access: 'ro',
        reset: RK_STATUS.IDLE | RK_STATUS.REPLAY_BUFFER_EMPTY | RK_STATUS.STALL_NOT_ACTIVE,
        fields: [
          { name: 'PAGING_ENABLED', lsb: 0, width: 1 },
          { name: 'PAGE_FAULT_ACTIVE', lsb: 1, width: 1, doc: 'Set by a page fault until PAGE_FAULT_DONE.' },
          { name: 'STALL_ACTIVE', lsb: 2, width: 1 },
          { name: 'IDLE', lsb: 3, width: 1, doc: 'Translations complete within a beat in the model, so always 1.' },
          { name: 'REPLAY_BUFFER_EMPTY', lsb: 4, width: 1, doc: 'Always 1 in the model (no beats are held).' },
          { name: 'PAGE_FAULT_IS_WRITE', lsb: 5, width: 1, doc: 'The pending page fault was a write.' },
          { name: 'STALL_NOT_ACTIVE', lsb: 31, width: 1 },
        ],
      },
      {
        name: 'COMMAND',
        offset: 0x08,
        access: 'wo',
        fields: [{ name: 'CMD', lsb: 0, width: 3, enum: { ...RK_CMD }, doc: 'Command number, applied on write.' }],
      },
      { name: 'PAGE_FAULT_ADDR', offset: 0x0c, access: 'ro', doc: 'IOVA of the pending page fault.' },
      {
        name: 'ZAP_ONE_LINE',
        offset: 0x10,
        access: 'wo',
        doc: 'Write an IOVA: drops its IOTLB entry and the cached DTE and PTE lines covering it.',
      },
      { name: 'INT_RAWSTAT', offset: 0x14, access: 'ro', fields: intFields('ro'), doc: 'Interrupt status before masking.' },
      { name: 'INT_CLEAR', offset: 0x18, access: 'wo', fields: intFields('wo'), doc: 'Write 1 to clear the INT_RAWSTAT bit.' },
      { name: 'INT_MASK', offset: 0x1c, fields: intFields('rw'), doc: 'Interrupt enables (1 = enabled).' },
      { name: 'INT_STATUS', offset: 0x20, access: 'ro', fields: intFields('ro'), doc: 'INT_RAWSTAT & INT_MASK.' },
      {
        name: 'AUTO_GATING',
        offset: 0x24,
        fields: [{ name: 'DISABLE_FETCH_DTE_TIME_LIMIT', lsb: 31, width: 1, doc: 'Driver workaround for the MMU blocking on DTE fetches.' }],
        doc: 'Clock auto-gating control; only bit 31 is documented.',
      },
    ],
  });
}

const decls: Record<RkVersion, BlockDecl> = { v1: buildDecl('v1'), v2: buildDecl('v2') };

/** The register block of one MMU instance for an entry-format version. */
export function rockchipDecl(version: RkVersion): BlockDecl {
  return decls[version];
}
