import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('npm start without the Electron runtime', () => {
  it('says so plainly and falls back to web mode, printing the URL', async () => {
    const child = spawn(process.execPath, ['scripts/start.mjs', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL printed:\n${out}`)), 90_000);
        child.stdout.on('data', () => {
          const m = /SoC Console \(web mode\): (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
      });
      expect(out).toMatch(/Electron runtime is not installed/);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect(await res.text()).toContain('SoC Console');
    } finally {
      process.kill(-child.pid!, 'SIGTERM');
    }
  });
});
