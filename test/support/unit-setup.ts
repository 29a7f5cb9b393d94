import { ensureBuilt } from '../../scripts/node-build.mjs';

/** Build out/node once, before scenario files start the CLI in parallel. */
export default async function setup(): Promise<void> {
  await ensureBuilt();
}
