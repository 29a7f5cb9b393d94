/**
 * The order of writeFileAtomic's durability steps, seen through a wrapped fs: the temp file is
 * fsynced before the rename, the folder after it (else a crash can leave an empty file).
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { writeFileAtomic } from '../../src/main/host/files';

const steps = vi.hoisted((): string[] => []);

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    open: async (...args: Parameters<typeof real.open>) => {
      const fh = await real.open(...args);
      const sync = fh.sync.bind(fh);
      fh.sync = async () => {
        steps.push(`sync ${basename(String(args[0]))}`);
        return sync();
      };
      return fh;
    },
    rename: async (from: string, to: string) => {
      steps.push(`rename ${basename(to)}`);
      return real.rename(from, to);
    },
  };
});

describe('writeFileAtomic durability', () => {
  it('fsyncs the new file before the rename and the folder after it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'soc-sync-'));
    const path = join(dir, 'board.json');
    await writeFile(path, 'old');
    steps.length = 0;
    await writeFileAtomic(path, 'new');
    expect(steps).toEqual([expect.stringMatching(/^sync \.board\.json\.[0-9a-f]{12}\.tmp$/), 'rename board.json', `sync ${basename(dir)}`]);
    expect(await readFile(path, 'utf8')).toBe('new');
  });
});
