// `npm run bringup` / `npm run serve`: run a built Node entry from out/node, building it first when
// the sources changed (scripts/node-build.mjs). Usage: node scripts/run-node.mjs <bringup|serve> args…
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { OUT, ensureBuilt } from './node-build.mjs';

const [entry, ...args] = process.argv.slice(2);
if (entry !== 'bringup' && entry !== 'serve') {
  process.stderr.write('usage: node scripts/run-node.mjs <bringup|serve> [args…]\n');
  process.exit(2);
}
await ensureBuilt();
// The entry reads its own arguments from process.argv, as when run directly.
process.argv = [process.argv[0], join(OUT, `${entry}.js`), ...args];
await import(pathToFileURL(join(OUT, `${entry}.js`)).href);
