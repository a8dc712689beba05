/**
 * RemoteSecondaryEss against a real secondary ESS in this process: a pool
 * with the core's secondary side, the control API with the PPRC routes, and
 * an NBD server with the hidden link exports (spec/copy-services.md §3.4).
 * PP-07 over NBD: a bound secondary refuses host READ/WRITE (EPERM) while
 * identification works; the link channel writes it; link exports are never
 * listed; X6: with every link connection gone past the heartbeat timeout,
 * the secondary marks the pair suspended.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createControlServer, type ControlServer } from '../../../src/control/server.js';
import { pprcRoutes } from '../../../src/control/routes-pprc.js';
import type { PprcCoreApi } from '../../../src/copy/pprc/remote/core-api.js';
import { PprcLinkExports } from '../../../src/copy/pprc/remote/link-exports.js';
import { RemoteEssRegistry } from '../../../src/copy/pprc/remote/remote-registry.js';
import { RemoteSecondaryEss, linkExportName } from '../../../src/copy/pprc/remote/remote-secondary.js';
import { SecondarySide } from '../../../src/copy/pprc/secondary-side.js';
import type { SecondaryBinding } from '../../../src/copy/pprc/secondary-ess.js';
import { isLunrigError, type ErrorCode } from '../../../src/errors.js';
import { NbdClient } from '../../../src/nbd/client.js';
import { PoolExports } from '../../../src/nbd/pool-exports.js';
import { NbdServer } from '../../../src/nbd/server.js';
import { Pool } from '../../../src/store/pool.js';
import { VirtualClock } from '../../../src/util/clock.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const MiB = 1024 * 1024;
const temp = tempDirs('lunrig-pprc-remote-');

let pool: Pool;
let side: SecondarySide;
let links: PprcLinkExports;
let control: ControlServer;
let nbd: NbdServer;
let nbdTarget: { host: string; port: number };
let clock: VirtualClock;
const clients: NbdClient[] = [];

const binding = (pairId: string): SecondaryBinding => ({ pairId, primary: { serial: 'PRIM1', lss: 0x10, volume: 'db', volumeId: '000PRIM1' }, criticalHeavy: false });

async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeDefined();
  if (!isLunrigError(err)) throw err;
  expect(err.code).toBe(code);
}

async function host(name: string): Promise<NbdClient> {
  const c = await NbdClient.connect(nbdTarget, { exportName: name });
  clients.push(c);
  return c;
}

beforeEach(async () => {
  pool = await Pool.open({ dir: temp.make(), serial: 'SEC01' });
  await pool.createLun({ name: 'sec', size: 8 * MiB, lss: 0x10 });
  await pool.createLun({ name: 'other', size: 8 * MiB, lss: 0x10 });
  // The manager's registry creates <pool>/pprc; here the secondary side stands alone.
  await mkdir(path.join(pool.dir, 'pprc'), { recursive: true });
  side = await SecondarySide.open(pool, { isPrimary: () => false, changed: () => undefined });
  const ess = side.asEss();
  // The secondary routes reach only asSecondary(); the primary-side routes are not exercised here.
  const manager = { asSecondary: () => ess } as unknown as PprcCoreApi;
  clock = new VirtualClock(1_000_000);
  links = new PprcLinkExports({ secondary: () => ess, heartbeatTimeoutMs: 2_000, clock });
  const remotes = await RemoteEssRegistry.open(pool.dir, () => ({ addEss: () => undefined }));
  control = await createControlServer(pool, { host: '127.0.0.1', port: 0, routes: [pprcRoutes({ manager: () => manager, remotes: () => remotes, links: () => links, serial: () => pool.info().serial })] });
  const base = new PoolExports(pool);
  nbd = new NbdServer({ exports: { get: (n) => links.get(n) ?? base.get(n), list: () => base.list() } });
  const bound = await nbd.listen({ host: '127.0.0.1', port: 0 });
  nbdTarget = { host: '127.0.0.1', port: bound.tcp!.port };
  links.start(() => nbd.stats());
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await links.close();
  await nbd.close();
  await control.close();
  await pool.close();
  temp.cleanup();
});

describe('RemoteSecondaryEss over HTTP + NBD', () => {
  it('connect learns the serial; describe reports a simplex volume with its own identity', async () => {
    const remote = await RemoteSecondaryEss.connect({ controlUrl: control.url, nbd: nbdTarget });
    expect(remote.serial).toBe('SEC01');
    const facts = await remote.describe('sec');
    expect(facts).toMatchObject({ name: 'sec', role: 'simplex', size: 8 * MiB, online: false });
    expect(facts.identity.serial).toBe('SEC01');
    await expectCode(remote.describe('nope'), 'LUN_NOT_FOUND');
    await expectCode(RemoteSecondaryEss.connect({ controlUrl: control.url, nbd: nbdTarget, serial: 'OTHER' }), 'INVALID_ARGUMENT');
    await remote.close();
  });

  it('PP-07 over NBD: a bound secondary refuses host READ and WRITE with EPERM, identification still works', async () => {
    const remote = await RemoteSecondaryEss.connect({ controlUrl: control.url, nbd: nbdTarget });
    await remote.bind('sec', binding('p1'));
    expect(await remote.describe('sec')).toMatchObject({ role: 'target', pairId: 'p1' });
    const h = await host('sec');
    expect(h.identity()).toMatchObject({ name: 'sec', serial: 'SEC01' });
    expect(h.size).toBe(8 * MiB);
    await expectCode(h.read(0, 4096), 'READ_ONLY'); // EPERM over the wire
    await expectCode(h.write(0, Buffer.alloc(4096, 1)), 'READ_ONLY');
    // Another pair cannot take it (idempotent for the same pair).
    await remote.bind('sec', binding('p1'));
    await expectCode(remote.bind('sec', binding('p2')), 'PPRC_VOLUME_IN_PAIR');
    await remote.close();
  });

  it('the link channel writes the bound secondary; its hidden export is never listed and refuses other pairs', async () => {
    const remote = await RemoteSecondaryEss.connect({ controlUrl: control.url, nbd: nbdTarget });
    await remote.bind('sec', binding('pair/7'));
    await expectCode(remote.channel('sec', 'other-pair', 0), 'PPRC_NOT_IN_PAIR');
    await expectCode(remote.channel('other', 'pair/7', 0), 'PPRC_NOT_IN_PAIR');
    const ch0 = await remote.channel('sec', 'pair/7', 0);
    const ch1 = await remote.channel('sec', 'pair/7', 1);
    expect(remote.openChannels).toBe(2);
    const data = Buffer.alloc(64 * 1024, 0x5a);
    await ch0.write(MiB, data, { fua: true });
    expect(Buffer.from(await ch1.read(MiB, data.length)).equals(data)).toBe(true);
    const listed = await NbdClient.listExports(nbdTarget);
    expect(listed.map((e) => e.name).sort()).toEqual(['other', 'sec']);
    // Not reachable by guessing the name of a pair that is not bound.
    await expect(NbdClient.connect(nbdTarget, { exportName: linkExportName('p9', 'sec') })).rejects.toThrow(/no export/);
    // Terminate: the link export goes, the host sees the mirrored data.
    await remote.unbind('sec', 'pair/7');
    await expect(ch0.read(0, 4096)).rejects.toThrow();
    const h = await host('sec');
    expect(Buffer.from(await h.read(MiB, data.length)).equals(data)).toBe(true);
    await remote.close();
    expect(remote.openChannels).toBe(0);
  });

  it('X6: when every link connection of a pair has been gone past the heartbeat timeout, the secondary marks it suspended', async () => {
    const remote = await RemoteSecondaryEss.connect({ controlUrl: control.url, nbd: nbdTarget });
    await remote.bind('sec', { ...binding('p1'), criticalHeavy: true });
    const ch = await remote.channel('sec', 'p1', 0);
    await ch.write(0, Buffer.alloc(4096, 3));
    // Connected: time passes, nothing happens.
    await clock.advance(10_000);
    await links.check();
    expect(side.bound.get('sec')!.status.suspended).toBe(false);
    await remote.closeChannel(ch);
    await waitFor(() => nbd.stats().every((c) => c.exportName !== linkExportName('p1', 'sec')));
    await links.check();
    await clock.advance(1_000);
    await links.check();
    expect(side.bound.get('sec')!.status.suspended).toBe(false);
    await clock.advance(1_500);
    await links.check();
    expect(side.bound.get('sec')!.status).toMatchObject({ suspended: true, writeInhibited: false });
    expect(links.status().events.at(-1)?.what).toMatch(/suspended/);
    // The primary writes through its links again (only an active pair does): the heartbeat's suspension is lifted.
    const again = await remote.channel('sec', 'p1', 0);
    await again.write(0, Buffer.alloc(4096, 4));
    await links.check();
    expect(side.bound.get('sec')!.status.suspended).toBe(false);
    expect(links.status().events.at(-1)?.what).toMatch(/resumed/);
    await remote.closeChannel(again);
    await waitFor(() => nbd.stats().every((c) => c.exportName !== linkExportName('p1', 'sec')));
    // A suspension the primary set is the primary's: links coming back do not lift it.
    await remote.setStatus('sec', 'p1', { suspended: true, writeInhibited: false, reason: 'manual-source' });
    const third = await remote.channel('sec', 'p1', 0);
    await third.read(0, 4096);
    await links.check();
    expect(side.bound.get('sec')!.status).toMatchObject({ suspended: true, reason: 'manual-source' });
    // The primary resumes (resync): the count restarts, the pair is not re-suspended at once.
    await remote.setStatus('sec', 'p1', { suspended: false, writeInhibited: false });
    await links.check();
    expect(side.bound.get('sec')!.status.suspended).toBe(false);
    await remote.close();
  });

  it('remote ESS endpoints persist in <pool>/pprc/remotes.json and come back on open', async () => {
    const added: string[] = [];
    const sink = () => ({ addEss: (e: RemoteSecondaryEss) => added.push(e.serial) });
    const registry = await RemoteEssRegistry.open(pool.dir, sink);
    const info = await registry.add({ controlUrl: control.url, nbd: `127.0.0.1:${nbdTarget.port}` });
    expect(info).toMatchObject({ serial: 'SEC01', controlUrl: control.url, nbd: nbdTarget, openLinks: 0 });
    await registry.close();
    const again = await RemoteEssRegistry.open(pool.dir, sink);
    expect(again.list().map((r) => r.serial)).toEqual(['SEC01']);
    expect(added).toEqual(['SEC01', 'SEC01']);
    expect(again.get('SEC01')!.controlUrl).toBe(control.url);
    await again.close();
  });
});

async function waitFor(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 10));
  }
}
