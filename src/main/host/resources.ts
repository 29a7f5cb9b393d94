import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The resources/ folder: found by walking up from this module (src/main/host or out/main). */
export function resourcesDir(from: string = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from);
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'resources');
    if (existsSync(join(candidate, 'socs'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`resources/socs not found above ${from}`);
}
