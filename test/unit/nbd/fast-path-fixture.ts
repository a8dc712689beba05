/**
 * For the fast-path tests: a pool of LUNs on a worker engine (optionally with
 * a tiny slot arena), exported through PoolExports (each export's volume is
 * the LUN's VolumeStack), served by an NbdServer on a unix socket.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SlotClass } from '../../../src/io/slot-arena.js';
import { WorkerIoEngine } from '../../../src/io/worker-engine.js';
import { NbdClient, type NbdClientOptions } from '../../../src/nbd/client.js';
import { PoolExports } from '../../../src/nbd/pool-exports.js';
import { NbdServer } from '../../../src/nbd/server.js';
import type { NbdServerOptions } from '../../../src/nbd/server-options.js';
import { Pool } from '../../../src/store/pool.js';
import { slotBudget } from '../../../src/nbd/fast-path.js';
import { waitFor } from './harness.js';

export const MiB = 1024 * 1024;

export interface FastFixture {
  dir: string;
  path: string;
  engine: WorkerIoEngine;
  pool: Pool;
  server: NbdServer;
  /** Free slots of the arena when nothing runs. */
  freeAtStart: number;
  connect(exportName?: string, o?: Partial<NbdClientOptions>): Promise<NbdClient>;
  /** Every slot back in the arena and nothing pinned (fails after a few seconds). */
  expectNoLeaks(): Promise<void>;
  close(): Promise<void>;
}

export async function startFastFixture(
  o: { luns?: { name: string; size: number }[]; slotClasses?: SlotClass[]; server?: Partial<NbdServerOptions>; workers?: number } = {},
): Promise<FastFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'lunrig-fast-'));
  const engine = await WorkerIoEngine.start({ workers: o.workers ?? 2, slotClasses: o.slotClasses });
  const pool = await Pool.open({ dir: join(dir, 'pool'), engine, segmentSize: 8 * MiB });
  for (const l of o.luns ?? [{ name: 'lun0', size: 64 * MiB }]) await pool.createLun(l);
  const server = new NbdServer({ ...o.server, exports: new PoolExports(pool) });
  const path = join(dir, 'nbd.sock');
  await server.listen({ path });
  const clients: NbdClient[] = [];
  const freeAtStart = engine.arena.freeCount;
  return {
    dir,
    path,
    engine,
    pool,
    server,
    freeAtStart,
    async connect(exportName = 'lun0', co = {}) {
      const c = await NbdClient.connect({ path }, { exportName, ...co });
      clients.push(c);
      return c;
    },
    async expectNoLeaks() {
      await waitFor(() => engine.arena.freeCount === freeAtStart && slotBudget(engine.arena).bytes === 0, 5000, `slots back (free ${engine.arena.freeCount} of ${freeAtStart}, pinned ${slotBudget(engine.arena).bytes})`);
    },
    async close() {
      for (const c of clients) c.destroy();
      await server.close();
      await pool.close().catch(() => undefined); // a test may have closed the engine under it
      await engine.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export { pattern } from '../../helpers/patterns.js';
