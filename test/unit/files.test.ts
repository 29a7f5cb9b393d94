import { chmod, chown, link, lstat, mkdtemp, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/main/host/files';

const dir = (): Promise<string> => mkdtemp(join(tmpdir(), 'soc-'));
const isRoot = process.getuid?.() === 0;

describe('writeFileAtomic', () => {
  it('replaces the file whole and leaves no temp file behind', async () => {
    const d = await dir();
    const path = join(d, 'board.soc.json');
    await writeFile(path, 'old');
    await writeFileAtomic(path, '{"version":1}');
    expect(await readFile(path, 'utf8')).toBe('{"version":1}');
    expect(await readdir(d)).toEqual(['board.soc.json']);
  });

  it('keeps the old file when the write cannot happen, and says why', async () => {
    const d = await dir();
    await expect(writeFileAtomic(join(d, 'missing-dir', 'x.json'), 'x')).rejects.toThrow('cannot save x.json: the folder does not exist');
    expect(await readdir(d)).toEqual([]);
  });

  it('refuses a read-only file (even as root) and leaves it as it was', async () => {
    const d = await dir();
    const path = join(d, 'locked.json');
    await writeFile(path, 'keep');
    await chmod(path, 0o444);
    await expect(writeFileAtomic(path, 'new')).rejects.toThrow('cannot save locked.json: the file is read-only');
    expect(await readFile(path, 'utf8')).toBe('keep');
    expect((await stat(path)).mode & 0o777).toBe(0o444);
    expect(await readdir(d)).toEqual(['locked.json']);
  });

  it('keeps the mode of a private file', async () => {
    const d = await dir();
    const path = join(d, 'private.json');
    await writeFile(path, 'old');
    await chmod(path, 0o600);
    await writeFileAtomic(path, 'new');
    expect((await stat(path)).mode & 0o7777).toBe(0o600);
    await chmod(path, 0o640);
    await writeFileAtomic(path, 'newer');
    expect((await stat(path)).mode & 0o7777).toBe(0o640);
    expect(await readFile(path, 'utf8')).toBe('newer');
  });

  it('writes through a symlink to its target, and the link stays a link', async () => {
    const d = await dir();
    const target = join(d, 'real.json');
    const linkPath = join(d, 'via-link.json');
    await writeFile(target, 'old');
    await chmod(target, 0o600);
    await symlink('real.json', linkPath);
    await writeFileAtomic(linkPath, 'new');
    expect((await lstat(linkPath)).isSymbolicLink()).toBe(true);
    expect(await readlink(linkPath)).toBe('real.json');
    expect(await readFile(target, 'utf8')).toBe('new');
    expect((await stat(target)).mode & 0o777).toBe(0o600);
  });

  it('creates the target of a dangling symlink, and refuses a symlink loop', async () => {
    const d = await dir();
    await symlink('made.json', join(d, 'dangling.json'));
    await writeFileAtomic(join(d, 'dangling.json'), 'made');
    expect(await readFile(join(d, 'made.json'), 'utf8')).toBe('made');
    expect((await lstat(join(d, 'dangling.json'))).isSymbolicLink()).toBe(true);
    await symlink('b.json', join(d, 'a.json'));
    await symlink('a.json', join(d, 'b.json'));
    await expect(writeFileAtomic(join(d, 'a.json'), 'x')).rejects.toThrow(/cannot save a\.json: too many levels of symbolic links/);
  });

  it('keeps hard links together: a file with more than one name is written in place', async () => {
    const d = await dir();
    const a = join(d, 'a.json');
    const b = join(d, 'b.json');
    await writeFile(a, 'old contents, longer than the new');
    await link(a, b);
    await writeFileAtomic(a, 'new');
    expect(await readFile(b, 'utf8')).toBe('new');
    expect(await readFile(a, 'utf8')).toBe('new');
    expect((await stat(a)).nlink).toBe(2);
    expect((await stat(a)).ino).toBe((await stat(b)).ino);
  });

  it('refuses what is not a regular file', async () => {
    const d = await dir();
    await expect(writeFileAtomic(d, 'x')).rejects.toThrow(/it is not a regular file/);
  });

  it.skipIf(!isRoot)('keeps the owner and group of a file (as root, who may give files away)', async () => {
    const d = await dir();
    const path = join(d, 'theirs.json');
    await writeFile(path, 'old');
    await chown(path, 4321, 4322);
    await chmod(path, 0o664);
    await writeFileAtomic(path, 'new');
    const st = await stat(path);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([4321, 4322, 0o664]);
    expect(await readFile(path, 'utf8')).toBe('new');
  });
});
