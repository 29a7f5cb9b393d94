// `npm start`: the Electron app where its runtime is installed; otherwise web mode, said plainly.
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The Electron binary if it is installed; never triggers electron's download-on-first-use. */
function installedElectron() {
  let dir;
  try {
    dir = dirname(require.resolve('electron/package.json'));
  } catch {
    return null;
  }
  const pathFile = join(dir, 'path.txt');
  if (!existsSync(pathFile)) return null;
  const exe = join(dir, 'dist', readFileSync(pathFile, 'utf8').trim());
  return existsSync(exe) ? exe : null;
}

const electronPath = installedElectron();
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
if (!electronPath) {
  console.log('SoC Console: the Electron runtime is not installed on this machine, so the desktop app cannot start.');
  console.log('(Where the network allows, `npx install-electron` fetches it.) Starting web mode instead: the same console in your browser.');
  const child = spawn(npm, ['run', 'serve', '--', ...process.argv.slice(2)], { stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 0));
} else {
  const build = spawnSync(npm, ['run', 'build'], { stdio: 'inherit' });
  if (build.status !== 0) process.exit(build.status ?? 1);
  const child = spawn(electronPath, ['.'], { stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 0));
}
