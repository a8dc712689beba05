/**
 * nbdfuse for integration tests: an NBD export as the file DIR/nbd, the route
 * to a real filesystem here (no /dev/nbd*). One mount at a time per test file;
 * `unmountLeftover` in afterAll cleans up after a failed test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import { run } from '../integration/nbd-harness.js';

export interface NbdfuseMount {
  mnt: string;
  fuse: ChildProcess;
  /** DIR/nbd: the export as a file. */
  file: string;
}

let mounted: NbdfuseMount | undefined;

/** nbdfuse in the background; ready once DIR/nbd has the export's size. */
export async function mountNbdfuse(mnt: string, uri: string, size: number, options: { readOnly?: boolean } = {}): Promise<NbdfuseMount> {
  const fuse = spawn('nbdfuse', [...(options.readOnly ? ['--readonly'] : []), mnt, uri], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  fuse.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const file = path.join(mnt, 'nbd');
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      if (statSync(file).size === size) {
        mounted = { mnt, fuse, file };
        return mounted;
      }
    } catch {
      // not mounted yet
    }
    if (fuse.exitCode !== null || Date.now() > deadline) {
      if (fuse.pid !== undefined && fuse.exitCode === null) process.kill(fuse.pid, 'SIGKILL');
      throw new Error(`nbdfuse did not mount ${uri} on ${mnt}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** fusermount3 -u (nbdfuse flushes to the export on unmount), then wait for nbdfuse to exit (SIGKILL by pid and a lazy unmount if it will not). */
export async function unmountNbdfuse(m: NbdfuseMount): Promise<void> {
  const { mnt, fuse } = m;
  const exited = new Promise<void>((resolve) => (fuse.exitCode !== null ? resolve() : fuse.once('exit', () => resolve())));
  const r = await run('fusermount3', ['-u', mnt]);
  const timer = setTimeout(
    () => {
      if (fuse.pid !== undefined && fuse.exitCode === null) process.kill(fuse.pid, 'SIGKILL');
      void run('fusermount3', ['-uz', mnt]);
    },
    r.code === 0 ? 10_000 : 0,
  );
  await exited;
  clearTimeout(timer);
  if (mounted === m) mounted = undefined;
}

/** Unmount whatever a failed test left mounted. */
export async function unmountLeftover(): Promise<void> {
  if (mounted) await unmountNbdfuse(mounted);
}
