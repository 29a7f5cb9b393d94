// Worker bootstrap for running the TypeScript worker source (dev, tests, CLI): Node 20 workers do
// not inherit the parent's --import hooks, so the worker registers tsx itself before loading it.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.tsEntry);
