/**
 * The contract between resources/linux (headers + soc-kernel.c) and the engine's runtime: which
 * imports exist, which of them are preemption points (they unwind the C stack with asyncify), and
 * the kernel-virtual window of DMA-visible memory.
 */

/** Imports that may unwind: each is a preemption point of the interleaving explorer. */
export const ASYNCIFY_IMPORTS = [
  'env.__soc_readl',
  'env.__soc_writel',
  'env.__soc_udelay',
  'env.__soc_lock',
  'env.__soc_cmpxchg32',
  'env.__soc_cmpxchg64',
  'env.__soc_xchg32',
  'env.__soc_xchg64',
  'env.__soc_pm_runtime',
  'soc.device_link',
  'env.load_ptr',
  'env.store_val_i32',
  'env.store_val_i64',
] as const;

/**
 * Kernel virtual addresses of DMA-visible memory (pages, kmem caches, coherent buffers) start
 * here; wasm memory stays below, so a hooked access at or above it goes to the CPU cache model.
 */
export const KVA_WINDOW = 0x8000_0000;
