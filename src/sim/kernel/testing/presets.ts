/** SoCs from the shipped presets, with the kernel booted, for driver tests and benches. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../config/validate';
import { Soc } from '../../soc';

const SOCS = fileURLToPath(new URL('../../../../resources/socs', import.meta.url));

export function presetSoc(preset: 'sun50i-h6' | 'rk3399', seed = 1): Soc {
  const file = join(SOCS, `${preset}.soc.json`);
  const r = parseConfig(readFileSync(file, 'utf8'), file);
  if (!r.ok) throw new Error(`${file}: ${r.errors.map((e) => e.message).join('; ')}`);
  const soc = new Soc(r.config, seed);
  void soc.kernel;
  return soc;
}
