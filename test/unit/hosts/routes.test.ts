/**
 * The control API for hosts, masking, reservations (routes-hosts.ts) and
 * target ports, faults, fate groups and timelines (routes-multipath.ts),
 * with the CLI's fault and timeline syntax (commands-mp.ts). MP-20, MP-34
 * and MP-37 through the API; a port added over the API serves NBD and
 * follows its faults.
 */
import path from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildControlApp } from '../../../src/control/app.js';
import { hostRoutes } from '../../../src/control/routes-hosts.js';
import { multipathRoutes } from '../../../src/control/routes-multipath.js';
import { parseFault, parseStep } from '../../../src/cli/commands-mp.js';
import { HostRegistry, MaskedExports, ReservationTable } from '../../../src/hosts/index.js';
import { PortManager } from '../../../src/multipath/port-manager.js';
import { NbdClient } from '../../../src/nbd/client.js';
import { PoolExports } from '../../../src/nbd/pool-exports.js';
import { Pool } from '../../../src/store/pool.js';
import { VirtualClock } from '../../../src/util/clock.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const temp = tempDirs('lunrig-mp-api-');
let pool: Pool;
let app: FastifyInstance;
let ports: PortManager;
let clock: VirtualClock;
let dir: string;
let access: { hosts: HostRegistry; reservations: ReservationTable };

beforeEach(async () => {
  dir = temp.make();
  pool = await Pool.open({ dir: path.join(dir, 'pool'), engine: 'fs' });
  await pool.createLun({ name: 'lun0', size: '16M' });
  await pool.createLun({ name: 'lun1', size: '16M' });
  access = { hosts: await HostRegistry.open(pool.info().dir), reservations: await ReservationTable.open(pool.info().dir) };
  clock = new VirtualClock();
  ports = new PortManager({ source: new PoolExports(pool), access, clock });
  app = await buildControlApp(pool, { routes: [hostRoutes(() => access), multipathRoutes(() => ports)] });
});

afterEach(async () => {
  await app.close();
  await ports.close();
  await pool.close();
  temp.cleanup();
});

function call(method: 'GET' | 'POST' | 'DELETE' | 'PUT', url: string, body?: unknown): Promise<LightMyRequestResponse> {
  return body === undefined ? app.inject({ method, url }) : app.inject({ method, url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
}

describe('hosts and reservations API', () => {
  it('hosts: create (201), HOST_EXISTS (409), map/unmap, LUN_NOT_MAPPED (404), LUN_NOT_FOUND on map, masking mode', async () => {
    expect((await call('GET', '/v1/masking')).json()).toEqual({ mode: 'auto', enabled: false });
    const created = await call('POST', '/v1/hosts', { name: 'host1', luns: ['lun0'] });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ name: 'host1', initiators: [{ kind: 'nbd-name', name: 'host1' }], luns: ['lun0'] });
    expect((await call('POST', '/v1/hosts', { name: 'host1' })).json().error.code).toBe('HOST_EXISTS');
    expect((await call('POST', '/v1/hosts', { name: 'host1' })).statusCode).toBe(409);
    expect((await call('PUT', '/v1/hosts/host1/luns/lun1')).json().luns).toEqual(['lun0', 'lun1']);
    expect((await call('PUT', '/v1/hosts/host1/luns/nope')).json().error.code).toBe('LUN_NOT_FOUND');
    expect((await call('DELETE', '/v1/hosts/host1/luns/lun1')).json().luns).toEqual(['lun0']);
    const notMapped = await call('DELETE', '/v1/hosts/host1/luns/lun1');
    expect([notMapped.statusCode, notMapped.json().error.code]).toEqual([404, 'LUN_NOT_MAPPED']);
    expect((await call('GET', '/v1/hosts/nobody')).json().error.code).toBe('HOST_NOT_FOUND');
    expect((await call('GET', '/v1/hosts')).json().masking).toEqual({ mode: 'auto', enabled: true });
    expect((await call('PUT', '/v1/masking', { mode: 'off' })).json()).toEqual({ mode: 'off', enabled: false });
    expect((await call('DELETE', '/v1/hosts/host1')).statusCode).toBe(204);
  });

  it('a mapping is to the LU: a LUN deleted and re-created under the same name is not visible to the host until mapped again', async () => {
    await call('POST', '/v1/hosts', { name: 'host1', luns: ['lun1'] });
    const entry = access.hosts.get('host1');
    expect(entry.lunIds).toEqual({ lun1: pool.lunInfo('lun1').uniqueId });
    const masked = new MaskedExports(new PoolExports(pool), { ...access, port: 'default' });
    expect(masked.get('host1/lun1')?.name).toBe('host1/lun1');
    await pool.deleteLun('lun1');
    await pool.createLun({ name: 'lun1', size: '16M' });
    expect(masked.get('host1/lun1')).toBeUndefined();
    await call('PUT', '/v1/hosts/host1/luns/lun1');
    expect(masked.get('host1/lun1')?.name).toBe('host1/lun1');
  });

  it('MP-34/MP-37 through the API: register, reserve and a conflicting command (409 RESERVATION_CONFLICT); generation counts REGISTER only', async () => {
    await call('POST', '/v1/hosts', { name: 'A' });
    await call('POST', '/v1/hosts', { name: 'B' });
    const cmd = (body: object) => call('POST', '/v1/luns/lun0/reservations', body);
    expect((await cmd({ command: 'register', host: 'A', serviceKey: '0xa1', aptpl: true })).json().generation).toBe(1);
    const reserved = (await cmd({ command: 'pr_reserve', host: 'A', key: '0xa1', type: 'write_exclusive_registrants_only' })).json();
    expect(reserved).toMatchObject({ generation: 1, aptpl: true, reservation: { type: 'write_exclusive_registrants_only', key: '00000000000000a1', holder: { host: 'A', port: 'default' } } });
    const conflict = await cmd({ command: 'reserve', host: 'B' });
    expect([conflict.statusCode, conflict.json().error.code]).toEqual([409, 'RESERVATION_CONFLICT']);
    expect((await cmd({ command: 'register', host: 'B', port: 'p1', serviceKey: 11 })).json().generation).toBe(2);
    expect((await cmd({ command: 'preempt', host: 'B', port: 'p1', key: 11, serviceKey: '0xa1', type: 5 })).json()).toMatchObject({
      generation: 3,
      reservation: { holder: { host: 'B', port: 'p1' } },
    });
    expect((await cmd({ command: 'pr_release', host: 'A', key: '0xa1', type: 5 })).json().error.code).toBe('RESERVATION_CONFLICT'); // A was preempted
    expect((await cmd({ command: 'register', host: 'nobody', serviceKey: 1 })).json().error.code).toBe('HOST_NOT_FOUND');
    expect((await call('GET', '/v1/luns/lun0/reservations')).json().registrations).toEqual([{ host: 'B', port: 'p1', key: '000000000000000b' }]);
    // APTPL: a new table over the same pool directory sees the same state (what a restart of serve does).
    const again = await ReservationTable.open(pool.info().dir);
    expect(again.status(pool.lunInfo('lun0').uniqueId).reservation?.holder).toEqual({ host: 'B', port: 'p1' });
  });
});

describe('target ports API', () => {
  it('a port added over the API serves NBD; down closes it, clear reopens it; MP-20: a fate group fault hits every member at once', async () => {
    const sock = path.join(dir, 'p1.sock');
    const added = await call('POST', '/v1/ports', { name: 'p1', socket: sock });
    expect(added.statusCode).toBe(201);
    expect(added.json()).toMatchObject({ name: 'p1', luns: 'all', listening: true, state: 'up', address: `nbd+unix:///?socket=${sock}` });
    expect((await call('POST', '/v1/ports', { name: 'p2', port: 0, luns: ['lun1'] })).json()).toMatchObject({ luns: ['lun1'], listening: true });
    const c = await NbdClient.connect({ path: sock }, { exportName: 'lun1' });
    await c.write(0, new Uint8Array(4096).fill(3));
    await c.close();
    const down = await call('PUT', '/v1/ports/p1/faults', { faults: [{ kind: 'down' }] });
    expect(down.json()).toMatchObject({ state: 'down', listening: false, faults: [{ kind: 'down' }] });
    await expect(NbdClient.connect({ path: sock }, { exportName: 'lun1', connectTimeoutMs: 500 })).rejects.toThrow();
    expect((await call('DELETE', '/v1/ports/p1/faults')).json()).toMatchObject({ state: 'up', listening: true, faults: [] });
    const back = await NbdClient.connect({ path: sock }, { exportName: 'lun1' });
    expect(Buffer.from(await back.read(0, 4096)).every((b) => b === 3)).toBe(true);
    await back.close();
    expect((await call('PUT', '/v1/ports/p1/faults', { faults: [{ kind: 'bogus' }] })).statusCode).toBe(400);

    expect((await call('POST', '/v1/fate-groups', { name: 'ctl0', ports: ['p1', 'p2'] })).json()).toEqual({ name: 'ctl0', ports: ['p1', 'p2'] });
    await call('PUT', '/v1/fate-groups/ctl0/faults', { faults: [{ kind: 'hang' }] });
    const listed = (await call('GET', '/v1/ports')).json().ports as { name: string; state: string; fateGroups: string[] }[];
    expect(listed.map((p) => [p.name, p.state, p.fateGroups])).toEqual([
      ['p1', 'hang', ['ctl0']],
      ['p2', 'hang', ['ctl0']],
    ]);
    await call('DELETE', '/v1/fate-groups/ctl0/faults');
    expect(((await call('GET', '/v1/ports')).json().ports as { state: string }[]).map((p) => p.state)).toEqual(['up', 'up']);
    expect((await call('DELETE', '/v1/ports/p2')).statusCode).toBe(204);
    expect((await call('GET', '/v1/ports/p2')).statusCode).toBe(404);
  });

  it('fault timelines run on the clock; the CLI syntax parses to the same faults', async () => {
    await call('POST', '/v1/ports', { name: 'p1', socket: path.join(dir, 'p1.sock') });
    const steps = ['1000@p1=down', '3000@p1=latency=5+error=0.5:MEDIUM_ERROR@write', '5000@p1=clear'].map(parseStep);
    expect(steps[1]).toEqual({ atMs: 3000, port: 'p1', faults: [{ kind: 'latency', ms: 5 }, { kind: 'error', rate: 0.5, code: 'MEDIUM_ERROR', ops: 'write' }] });
    expect(parseFault('flap=2000:0.25:hang')).toEqual({ kind: 'flap', periodMs: 2000, duty: 0.25, fault: 'hang' });
    expect(parseFault('latency=uniform:1:9@read')).toEqual({ kind: 'latency', ms: { dist: 'uniform', min: 1, max: 9 }, ops: 'read' });
    expect(() => parseFault('melt')).toThrow(/unknown fault/);
    const tl = await call('POST', '/v1/fault-timelines', { steps });
    expect(tl.statusCode).toBe(201);
    const id = tl.json().id as string;
    await clock.advance(1000);
    await ports.port('p1').settled();
    expect((await call('GET', '/v1/ports/p1')).json()).toMatchObject({ state: 'down', listening: false });
    await clock.advance(2000);
    await ports.port('p1').settled();
    expect((await call('GET', '/v1/ports/p1')).json()).toMatchObject({ state: 'up', listening: true, faults: [{ kind: 'latency' }, { kind: 'error' }] });
    await clock.advance(2000);
    const done = (await call('GET', '/v1/fault-timelines')).json().timelines[0];
    expect(done).toMatchObject({ id, steps: 3, done: true });
    expect(done.fired.map((f: { atMs: number }) => f.atMs)).toEqual([1000, 3000, 5000]);
    expect((await call('GET', '/v1/ports/p1')).json().faults).toEqual([]);
  });
});
