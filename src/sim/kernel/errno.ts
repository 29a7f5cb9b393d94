/** Linux errno values (asm-generic/errno-base.h, errno.h); kernel calls return them negated. */
export const EPERM = 1;
export const ENOENT = 2;
export const EIO = 5;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ERANGE = 34;
export const EDEADLK = 35;
export const ENOSYS = 38;
export const EADDRINUSE = 98;
export const ETIMEDOUT = 110;
export const EINPROGRESS = 115;

const NAMES: Record<number, string> = {
  [EPERM]: 'EPERM',
  [ENOENT]: 'ENOENT',
  [EIO]: 'EIO',
  [EAGAIN]: 'EAGAIN',
  [ENOMEM]: 'ENOMEM',
  [EACCES]: 'EACCES',
  [EFAULT]: 'EFAULT',
  [EBUSY]: 'EBUSY',
  [EEXIST]: 'EEXIST',
  [ENODEV]: 'ENODEV',
  [EINVAL]: 'EINVAL',
  [ERANGE]: 'ERANGE',
  [EDEADLK]: 'EDEADLK',
  [ENOSYS]: 'ENOSYS',
  [EADDRINUSE]: 'EADDRINUSE',
  [ETIMEDOUT]: 'ETIMEDOUT',
  [EINPROGRESS]: 'EINPROGRESS',
};

/** "-EEXIST" for -17, the number itself for anything else. */
export function errname(ret: number): string {
  const n = NAMES[-ret];
  return ret < 0 && n ? `-${n}` : String(ret);
}

/** Hex address for messages. */
export function hex(v: number): string {
  return `0x${v.toString(16)}`;
}
