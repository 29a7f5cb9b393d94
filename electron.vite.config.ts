import { resolve } from 'node:path';
import { defineConfig } from 'electron-vite';
import vue from '@vitejs/plugin-vue';

const root = import.meta.dirname;

export default defineConfig({
  main: {
    build: {
      outDir: 'out/main',
      rolldownOptions: {
        input: {
          index: resolve(root, 'src/main/electron/index.ts'),
          // The engine runs in a worker_threads worker; the host spawns it from out/main/sim-worker.js.
          'sim-worker': resolve(root, 'src/main/host/sim-worker.ts'),
          // Helpers for large explorations; the sim worker spawns them from out/main/explore-worker.js.
          'explore-worker': resolve(root, 'src/main/host/explore-worker.ts'),
          // C driver compiles; the sim worker spawns them from out/main/cdriver-worker.js.
          'cdriver-worker': resolve(root, 'src/main/host/cdriver-worker.ts'),
        },
      },
    },
  },
  preload: {
    build: {
      outDir: 'out/preload',
      // A sandboxed preload is run as a classic script with a small require(): it cannot be ESM, and
      // it cannot load chunks of its own. One CommonJS file, out/preload/index.cjs, which main loads.
      rolldownOptions: {
        input: { index: resolve(root, 'electron/preload.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs', codeSplitting: false },
      },
    },
  },
  renderer: {
    root: resolve(root, 'src/renderer'),
    plugins: [vue()],
    build: {
      outDir: resolve(root, 'out/renderer'),
      // Monaco's main chunk and TS worker are several MB by nature; the warning says nothing useful.
      chunkSizeWarningLimit: 16_000,
      rolldownOptions: { input: { index: resolve(root, 'src/renderer/index.html') } },
    },
    worker: { format: 'es' },
  },
});
