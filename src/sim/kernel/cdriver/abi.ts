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

/** Every function the runtime provides, by import module: anything else a driver imports is unsupported. */
export const RUNTIME_IMPORTS: Readonly<Record<'env' | 'soc', readonly string[]>> = {
  env: [
    '__soc_readl',
    '__soc_writel',
    '__soc_udelay',
    '__soc_lock',
    '__soc_unlock',
    '__soc_assert_locked',
    '__soc_cmpxchg32',
    '__soc_cmpxchg64',
    '__soc_xchg32',
    '__soc_xchg64',
    '__soc_pm_runtime',
    'soc_variant',
    '__soc_warn',
    '__soc_bug',
    '__soc_ktime_ns',
    '__soc_virt_to_phys',
    '__soc_phys_to_virt',
    'load_ptr',
    'store_ptr',
    'store_val_i32',
    'store_val_i64',
    'load_val_i32',
    'load_val_i64',
    'load_val_f32',
    'load_val_f64',
    'store_val_f32',
    'store_val_f64',
    'memory_grow_pre',
    'memory_grow_post',
  ],
  soc: ['log', 'page_alloc', 'page_free', 'cache_create', 'cache_alloc', 'cache_free', 'dma_sync', 'fault', 'device_link', 'clk_gate', 'reset_line'],
};
