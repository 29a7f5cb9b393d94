import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/main/host/files';

describe('writeFileAtomic', () => {
  it('replaces the file whole and leaves no temp file behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'soc-'));
    const path = join(dir, 'board.soc.json');
    await writeFile(path, 'old');
    await writeFileAtomic(path, '{"version":1}');
    expect(await readFile(path, 'utf8')).toBe('{"version":1}');
    expect(await readdir(dir)).toEqual(['board.soc.json']);
  });

  it('keeps the old file when the write cannot happen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'soc-'));
    await expect(writeFileAtomic(join(dir, 'missing-dir', 'x.json'), 'x')).rejects.toThrow();
    expect(await readdir(dir)).toEqual([]);
  });
});
