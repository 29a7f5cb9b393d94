import { chromiumPath } from './chromium';

/** Unpack the browser once, before any e2e file starts its clock. */
export default async function setup(): Promise<void> {
  await chromiumPath();
}
