// Preloaded by `npm run bench`'s cli group: writes this process's peak RSS (KiB, worker threads
// included) to the file SOC_CONSOLE_BENCH_RSS names, as the process exits.
import { writeFileSync } from 'node:fs';

const file = process.env.SOC_CONSOLE_BENCH_RSS;
if (file) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
