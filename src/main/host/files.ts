import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { access, lstat, open, readlink, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/** Symlink hops followed before giving up (the kernel's own limit is 40). */
const MAX_SYMLINKS = 40;

/**
 * Save text to a file the way an editor should:
 * - through a symlink to its target (the link stays a link);
 * - a read-only file (no write bit, or not writable by this user) is refused, not replaced;
 * - normally atomically: a temp file beside the target with the target's mode and owner, fsynced,
 *   renamed over it, and the folder fsynced, so a crash leaves the old file or the new one;
 * - in place when renaming would lose something the file has: a file with more than one hard
 *   link (rename would split it from its other names) or an owner this process cannot give the
 *   temp file. In place is not atomic; a crash mid-write can leave it short, which we prefer to
 *   silently detaching the other names or changing who owns the file.
 * Errors name the file and say why.
 */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const target = await resolveSymlinks(path);
  const name = basename(target);
  let st: Stats | null;
  try {
    st = await stat(target);
  } catch (err) {
    if (code(err) !== 'ENOENT') throw saveError(name, err);
    st = null;
  }
  if (st) {
    if (!st.isFile()) throw new Error(`cannot save ${name}: it is not a regular file`);
    if ((st.mode & 0o222) === 0 || !(await writable(target))) throw new Error(`cannot save ${name}: the file is read-only`);
    if (st.nlink > 1) return writeInPlace(target, text);
  }
  const mode = st ? st.mode & 0o7777 : 0o666;
  const tmp = join(dirname(target), `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  let created = false;
  try {
    let fh;
    try {
      fh = await open(tmp, 'wx', mode);
    } catch (err) {
      // A folder this user may not create files in, holding a file it may write: in place.
      if (st && (code(err) === 'EACCES' || code(err) === 'EPERM')) return await writeInPlace(target, text);
      throw err;
    }
    created = true;
    try {
      if (st) {
        if (!(await keepOwner(fh, st))) {
          await fh.close();
          await unlink(tmp);
          created = false;
          return await writeInPlace(target, text);
        }
        // After chown (which clears set-id bits), and because open() applied the umask.
        await fh.chmod(mode);
      }
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close().catch(() => undefined);
    }
    await rename(tmp, target);
    created = false;
    await syncDir(dirname(target));
  } catch (err) {
    if (created) await unlink(tmp).catch(() => undefined);
    throw saveError(name, err);
  }
}

/** The file a path names once every symlink on the last component is followed. */
async function resolveSymlinks(path: string): Promise<string> {
  let p = resolve(path);
  for (let hops = 0; hops <= MAX_SYMLINKS; hops++) {
    let st: Stats;
    try {
      st = await lstat(p);
    } catch (err) {
      if (code(err) === 'ENOENT') return p;
      throw saveError(basename(p), err);
    }
    if (!st.isSymbolicLink()) return p;
    p = resolve(dirname(p), await readlink(p));
  }
  throw new Error(`cannot save ${basename(path)}: too many levels of symbolic links`);
}

async function writable(path: string): Promise<boolean> {
  try {
    await access(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Give the temp file the old file's owner and group; false when this process may not. */
async function keepOwner(fh: Awaited<ReturnType<typeof open>>, st: Stats): Promise<boolean> {
  const mine = await fh.stat();
  if (mine.uid === st.uid && mine.gid === st.gid) return true;
  try {
    await fh.chown(st.uid, st.gid);
    return true;
  } catch (err) {
    if (code(err) === 'EPERM' || code(err) === 'EINVAL') return false;
    throw err;
  }
}

async function writeInPlace(target: string, text: string): Promise<void> {
  try {
    const fh = await open(target, 'r+');
    try {
      const data = Buffer.from(text, 'utf8');
      await fh.write(data, 0, data.length, 0);
      await fh.truncate(data.length);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw saveError(basename(target), err);
  }
}

/**
 * fsync a folder so the rename in it survives a crash. Windows cannot open a folder for this; some
 * file systems refuse to sync one (EINVAL): the file is saved by then, so that is no failure.
 */
async function syncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch (err) {
    if (code(err) !== 'EINVAL' && code(err) !== 'ENOTSUP') throw err;
  } finally {
    await fh.close();
  }
}

const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | null)?.code;

const REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOENT: 'the folder does not exist',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'it is a folder',
  ELOOP: 'too many levels of symbolic links',
  EIO: 'input/output error',
};

function saveError(name: string, err: unknown): Error {
  if (err instanceof Error && err.message.startsWith('cannot save ')) return err;
  const c = code(err);
  const why = (c && REASONS[c]) ?? (err instanceof Error ? err.message : String(err));
  return new Error(`cannot save ${name}: ${why}`);
}
