/**
 * One process owns a pool at a time: two servers writing the same sparse files
 * would corrupt them silently. The lock file holds the owner's pid; a lock left
 * by a process that no longer exists (kill -9) is taken over.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { LunrigError, fromSystemError } from '../errors.js';
import { LOCK_FILE } from './pool-metadata.js';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class PoolLock {
  private constructor(private readonly file: string) {}

  static async acquire(dir: string): Promise<PoolLock> {
    const file = path.join(dir, LOCK_FILE);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const handle = await fsp.open(file, 'wx', 0o644);
        await handle.writeFile(`${process.pid}\n`);
        await handle.close();
        return new PoolLock(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fromSystemError(err, `locking pool ${dir}`);
      }
      const owner = Number.parseInt(await fsp.readFile(file, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner)) {
        throw new LunrigError('POOL_LOCKED', `pool ${dir} is in use by process ${owner}`, { dir, pid: owner });
      }
      if (owner === process.pid) throw new LunrigError('POOL_LOCKED', `pool ${dir} is already open in this process`, { dir });
      await fsp.rm(file, { force: true }); // stale: its owner is gone
    }
    throw new LunrigError('POOL_LOCKED', `could not lock pool ${dir}`, { dir });
  }

  async release(): Promise<void> {
    await fsp.rm(this.file, { force: true });
  }
}
