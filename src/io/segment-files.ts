/** Opening and closing a LUN's segment files as plain fds (shared by every thread of the process). */
import fs from 'node:fs';
import { promisify } from 'node:util';
import { fromSystemError } from '../errors.js';

const open = promisify(fs.open);
const close = promisify(fs.close);

/** Opens `paths` read-write (or read-only); on failure closes whatever it opened and throws a LunrigError. */
export async function openSegments(paths: readonly string[], readOnly: boolean): Promise<number[]> {
  const fds: number[] = [];
  try {
    for (const path of paths) fds.push(await open(path, readOnly ? 'r' : 'r+'));
    return fds;
  } catch (err) {
    await closeSegments(fds);
    throw fromSystemError(err, `open LUN segment`);
  }
}

/** Closes every fd, reporting the first failure after trying them all. */
export async function closeSegments(fds: readonly number[]): Promise<void> {
  let first: unknown;
  for (const fd of fds) {
    try {
      await close(fd);
    } catch (err) {
      first ??= err;
    }
  }
  if (first !== undefined) throw fromSystemError(first, 'close LUN segment');
}
