import { ensureBuilt } from '../../scripts/node-build.mjs';
import { chromiumPath } from './chromium';

/** Unpack the browser and build out/node once, before any e2e file starts its clock. */
export default async function setup(): Promise<void> {
  await Promise.all([chromiumPath(), ensureBuilt()]);
}
