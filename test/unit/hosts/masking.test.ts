/**
 * Hosts and LUN masking on NBD (spec/multipath.md §1.1, DESIGN.md "hosts"):
 * a client sees and opens only the LUNs mapped to its host, identified by a
 * verified TLS identity (PSK here) or by an export-name prefix `HOST/LUN`;
 * everything is open while no host exists. Reservations are enforced on
 * every port of a LUN, keyed by the session's host (MP-34 over NBD).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isLunrigError } from '../../../src/errors.js';
import { HostRegistry, MaskedExports, ReservationTable, splitExportName } from '../../../src/hosts/index.js';
import { NbdClient } from '../../../src/nbd/client.js';
import { ExportRegistry } from '../../../src/nbd/export-provider.js';
import { NbdServer } from '../../../src/nbd/server.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';

const MiB = 1024 * 1024;
const KEY = randomBytes(32);
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lunrig-hosts-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function array(ports = ['p0']) {
  const dir = await tempDir();
  const hosts = await HostRegistry.open(dir);
  const reservations = await ReservationTable.open(dir);
  const luns = new ExportRegistry([
    { name: 'lun0', volume: new MemoryVolume({ size: 4 * MiB, identity: { name: 'lun0' } }) },
    { name: 'lun1', volume: new MemoryVolume({ size: 4 * MiB, identity: { name: 'lun1' } }) },
  ]);
  const sockets: Record<string, string> = {};
  const servers: Record<string, NbdServer> = {};
  for (const port of ports) {
    const server = new NbdServer({ exports: new MaskedExports(luns, { hosts, reservations, port }), tls: { mode: 'optional', psk: { alice: KEY } } });
    sockets[port] = path.join(dir, `${port}.sock`);
    await server.listen({ path: sockets[port] });
    servers[port] = server;
    cleanups.push(() => server.close());
  }
  return { dir, hosts, reservations, luns, sockets, servers };
}

async function open(socket: string, exportName: string, psk?: string): Promise<NbdClient> {
  const c = await NbdClient.connect({ path: socket }, { exportName, ...(psk && { tls: { mode: 'require' as const, psk: { identity: psk, key: KEY } } }) });
  cleanups.push(() => c.close().catch(() => undefined));
  return c;
}

const refused = async (p: Promise<unknown>): Promise<boolean> =>
  p.then(
    () => false,
    () => true,
  );

describe('hosts and LUN masking', () => {
  it('export names: HOST/LUN splits at the first slash; a plain name has no host part', () => {
    expect(splitExportName('host1/lun0')).toEqual({ host: 'host1', lun: 'lun0' });
    expect(splitExportName('lun0')).toEqual({ host: undefined, lun: 'lun0' });
  });

  it('the registry: create, map, unmap, delete with typed errors, persisted in hosts.json', async () => {
    const dir = await tempDir();
    const reg = await HostRegistry.open(dir);
    expect(reg.maskingEnabled).toBe(false);
    await reg.create({ name: 'host1', luns: ['lun0'] });
    await reg.create({ name: 'host2', initiators: [{ kind: 'psk', name: 'alice' }, { kind: 'x509', name: 'host2.example' }] });
    expect(reg.maskingEnabled).toBe(true);
    await expect(reg.create({ name: 'host1' })).rejects.toSatisfy((e) => isLunrigError(e, 'HOST_EXISTS'));
    await expect(reg.create({ name: 'host3', initiators: [{ kind: 'psk', name: 'alice' }] })).rejects.toSatisfy((e) => isLunrigError(e, 'INVALID_ARGUMENT'));
    await expect(reg.map('nobody', 'lun0')).rejects.toSatisfy((e) => isLunrigError(e, 'HOST_NOT_FOUND'));
    await expect(reg.unmap('host2', 'lun0')).rejects.toSatisfy((e) => isLunrigError(e, 'LUN_NOT_MAPPED'));
    await reg.map('host2', 'lun1');
    const again = await HostRegistry.open(dir);
    expect(again.list()).toEqual([
      { name: 'host1', initiators: [{ kind: 'nbd-name', name: 'host1' }], luns: ['lun0'] },
      { name: 'host2', initiators: [{ kind: 'psk', name: 'alice' }, { kind: 'x509', name: 'host2.example' }], luns: ['lun1'] },
    ]);
    expect(again.byPeer({ kind: 'psk', name: 'alice' })).toBe('host2');
    expect(again.byClaim('host1')).toBe('host1');
    await again.delete('host1');
    await again.setMasking('off');
    const third = await HostRegistry.open(dir);
    expect(third.list().map((h) => h.name)).toEqual(['host2']);
    expect(third.maskingEnabled).toBe(false);
  });

  it('no hosts defined: every client opens and lists every LUN (existing behaviour)', async () => {
    const a = await array();
    const c = await open(a.sockets.p0!, 'lun1');
    expect(c.size).toBe(4 * MiB);
    expect((await NbdClient.listExports({ path: a.sockets.p0! })).map((e) => e.name).sort()).toEqual(['lun0', 'lun1']);
  });

  it('masking on: a host opens only its mapped LUNs, by HOST/LUN or by its TLS PSK identity; LIST shows a TLS host its LUNs only', async () => {
    const a = await array();
    await a.hosts.create({ name: 'host1', luns: ['lun0'] });
    await a.hosts.create({ name: 'host2', initiators: [{ kind: 'psk', name: 'alice' }], luns: ['lun1'] });
    const s = a.sockets.p0!;
    expect(await refused(open(s, 'lun0'))).toBe(true); // no identity
    const c = await open(s, 'host1/lun0');
    await c.write(0, new Uint8Array(4096).fill(1));
    // A HOST/LUN session counts as a session on the LUN (FlashCopy F-P5's "online").
    expect(a.servers.p0!.sessionsOn('lun0')).toBe(1);
    expect(a.servers.p0!.sessionsOn('lun1')).toBe(0);
    expect(await refused(open(s, 'host1/lun1'))).toBe(true); // not mapped
    expect(await refused(open(s, 'nohost/lun0'))).toBe(true); // unknown initiator
    expect(await refused(open(s, 'host2/lun1'))).toBe(true); // host2 has no nbd-name initiator
    const t = await open(s, 'lun1', 'alice');
    expect(t.size).toBe(4 * MiB);
    expect(await refused(open(s, 'lun0', 'alice'))).toBe(true);
    expect(await refused(open(s, 'host1/lun0', 'alice'))).toBe(true); // TLS says host2, the name says host1
    expect((await NbdClient.listExports({ path: s })).map((e) => e.name)).toEqual([]);
    expect((await NbdClient.listExports({ path: s }, { tls: { mode: 'require', psk: { identity: 'alice', key: KEY } } })).map((e) => e.name)).toEqual(['lun1']);
  });

  it('unmapping a LUN ends an open session at its next request (ESHUTDOWN); mapping it again admits new sessions', async () => {
    const a = await array();
    await a.hosts.create({ name: 'host1', luns: ['lun0'] });
    const c = await open(a.sockets.p0!, 'host1/lun0');
    await c.read(0, 512);
    await a.hosts.unmap('host1', 'lun0');
    expect(await refused(c.read(0, 512))).toBe(true);
    expect(await refused(open(a.sockets.p0!, 'host1/lun0'))).toBe(true);
    await a.hosts.map('host1', 'lun0');
    await expect((await open(a.sockets.p0!, 'host1/lun0')).read(0, 512)).resolves.toHaveLength(512);
  });

  it('MP-34 over NBD: host A holds PR Write Exclusive - Registrants Only through port p0; host B is refused writes on both ports (EPERM), reads pass; A writes through p1 once registered there', async () => {
    const a = await array(['p0', 'p1']);
    await a.hosts.create({ name: 'A', luns: ['lun0'] });
    await a.hosts.create({ name: 'B', luns: ['lun0'] });
    const lu = a.luns.get('lun0')!.volume.identity().uniqueId;
    const aP0 = a.reservations.nexus(lu, { host: 'A', port: 'p0' });
    await aP0.persistentReserveOut({ action: 'register', serviceKey: 0xa });
    await aP0.persistentReserveOut({ action: 'reserve', key: 0xa, type: 'write_exclusive_registrants_only' });
    const a0 = await open(a.sockets.p0!, 'A/lun0');
    const a1 = await open(a.sockets.p1!, 'A/lun0');
    const b0 = await open(a.sockets.p0!, 'B/lun0');
    const b1 = await open(a.sockets.p1!, 'B/lun0');
    const data = new Uint8Array(4096).fill(0x42);
    await a0.write(0, data);
    for (const b of [b0, b1]) {
      const err = await b.write(0, data).catch((e: unknown) => e);
      expect(isLunrigError(err)).toBe(true);
      expect((err as Error).message).toMatch(/reservation conflict/);
      expect(Buffer.from(await b.read(0, 4096)).equals(Buffer.from(data))).toBe(true);
    }
    // A's nexus through p1 is not registered yet (no ALL_TG_PT): conflict until it is.
    expect(await refused(a1.write(0, data))).toBe(true);
    await a.reservations.nexus(lu, { host: 'A', port: 'p1' }).persistentReserveOut({ action: 'register', serviceKey: 0xa });
    await a1.write(4096, data);
    // Released: B writes again on the same sessions.
    await aP0.persistentReserveOut({ action: 'release', key: 0xa, type: 'write_exclusive_registrants_only' });
    await b1.write(8192, data);
  });
});
