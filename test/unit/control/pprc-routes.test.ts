/**
 * The PPRC control API (src/control/routes-pprc.ts) over a real PprcManager
 * with a secondary in another LSS of the same pool (spec/copy-services.md
 * §3, §5.2-§5.5): links and faults, paths (PP-03), pairs through their life
 * (establish, suspend, resume, wait, audit, terminate), LSS settings, freeze,
 * power cycle, the error shape for refusals, and OpenAPI.
 */
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildControlApp } from '../../../src/control/app.js';
import { HTTP_STATUS } from '../../../src/control/http-status.js';
import { PprcManager } from '../../../src/copy/pprc/manager.js';
import { PprcService } from '../../../src/copy/pprc/remote/serving.js';
import type { ErrorCode } from '../../../src/errors.js';
import { Pool } from '../../../src/store/pool.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const MiB = 1024 * 1024;
const temp = tempDirs('lunrig-pprc-api-');
let pool: Pool;
let pprc: PprcManager;
let service: PprcService;
let app: FastifyInstance;

beforeEach(async () => {
  pool = await Pool.open({ dir: temp.make(), serial: 'FCA24', engine: 'fs' });
  await pool.createLun({ name: 'p', size: 4 * MiB, lss: 0x10 });
  await pool.createLun({ name: 's', size: 4 * MiB, lss: 0x11 });
  await pool.createLun({ name: 'same', size: 4 * MiB, lss: 0x10 });
  pprc = await PprcManager.open(pool, { trackSize: '64K' });
  service = await PprcService.open(pool, pprc);
  app = await buildControlApp(pool, { routes: [service.hooks().routes] });
});

afterEach(async () => {
  await app.close();
  await service.close();
  await pprc.close();
  await pool.close();
  temp.cleanup();
});

function call(method: 'GET' | 'POST' | 'DELETE' | 'PUT', url: string, body?: unknown): Promise<LightMyRequestResponse> {
  return body === undefined ? app.inject({ method, url }) : app.inject({ method, url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
}

async function ok<T = Record<string, unknown>>(method: 'GET' | 'POST' | 'DELETE' | 'PUT', url: string, body?: unknown, status = 200): Promise<T> {
  const res = await call(method, url, body);
  expect(res.statusCode, res.body).toBe(status);
  return res.json() as T;
}

function expectError(res: LightMyRequestResponse, code: ErrorCode): void {
  const body = res.json() as { error: { code: string; message: string } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  expect(res.statusCode).toBe(HTTP_STATUS[code]);
}

async function setUpPath(): Promise<void> {
  await ok('POST', '/v1/pprc/links', { to: 'FCA24', id: 'l1' }, 201);
  await ok('POST', '/v1/pprc/paths', { lss: '10', to: 'FCA24', targetLss: '0x11', links: ['l1'] });
}

describe('PPRC control API', () => {
  it('ESSs: this serial and no remotes; a remote ESS that does not answer is UNREACHABLE', async () => {
    expect(await ok('GET', '/v1/pprc/ess')).toEqual({ serial: 'FCA24', remotes: [] });
    expectError(await call('POST', '/v1/pprc/ess', { controlUrl: 'http://127.0.0.1:1', nbd: '127.0.0.1:2' }), 'UNREACHABLE');
    expectError(await call('POST', '/v1/pprc/ess', { controlUrl: 'http://127.0.0.1:1', nbd: 'nonsense' }), 'INVALID_ARGUMENT');
  });

  it('links: add, fault down / latency / bandwidth, clear, remove; unknown link is PPRC_LINK_NOT_FOUND', async () => {
    const link = await ok('POST', '/v1/pprc/links', { to: 'FCA24', id: 'l1', distanceKm: 10 }, 201);
    expect(link).toMatchObject({ id: 'l1', to: 'FCA24', index: 0, distanceKm: 10, down: false });
    expect(await ok('PUT', '/v1/pprc/links/l1/fault', { down: true, latencyMs: 5, bandwidth: 1048576 })).toMatchObject({ id: 'l1', down: true, latencyMs: 5, bandwidth: 1048576 });
    expect(await ok('DELETE', '/v1/pprc/links/l1/fault')).toMatchObject({ id: 'l1', down: false, latencyMs: 0 });
    expectError(await call('PUT', '/v1/pprc/links/zz/fault', { down: true }), 'PPRC_LINK_NOT_FOUND');
    expectError(await call('PUT', '/v1/pprc/links/l1/fault', {}), 'INVALID_ARGUMENT');
    expectError(await call('POST', '/v1/pprc/links', { to: 'FCA24', distanceKm: 200 }), 'PPRC_DISTANCE_TOO_LONG');
    expect((await ok<{ links: unknown[] }>('GET', '/v1/pprc/links')).links).toHaveLength(1);
    await ok('DELETE', '/v1/pprc/links/l1');
    expect((await ok<{ links: unknown[] }>('GET', '/v1/pprc/links')).links).toHaveLength(0);
  });

  it('PP-03 paths: establish, "skip" when it exists is not executed, "replace" replaces; remove; PP-01 no path refuses establish', async () => {
    expectError(await call('POST', '/v1/pprc/pairs', { primary: 'p', secondary: { volume: 's' }, mode: 'no-copy' }), 'PPRC_NO_PATH');
    await ok('POST', '/v1/pprc/links', { to: 'FCA24', id: 'l1' }, 201);
    await ok('POST', '/v1/pprc/links', { to: 'FCA24', id: 'l2' }, 201);
    expect(await ok('POST', '/v1/pprc/paths', { lss: 16, to: 'FCA24', targetLss: 17, links: ['l1'] })).toMatchObject({ notExecuted: false });
    expect(await ok('POST', '/v1/pprc/paths', { lss: '10', to: 'FCA24', targetLss: '11', links: ['l2'], ifExists: 'skip' })).toMatchObject({ notExecuted: true });
    await ok('POST', '/v1/pprc/paths', { lss: '10', to: 'FCA24', targetLss: '11', links: ['l2'], ifExists: 'replace' });
    expect((await ok<{ paths: unknown[] }>('GET', '/v1/pprc/paths')).paths).toEqual([{ lss: 0x10, to: 'FCA24', targetLss: 0x11, links: ['l2'] }]);
    await ok('DELETE', '/v1/pprc/paths/10/FCA24/11');
    expectError(await call('DELETE', '/v1/pprc/paths/10/FCA24/11'), 'PPRC_PATH_NOT_FOUND');
  });

  it('a pair through its life: establish, query both roles, suspend, resume, wait, audit, terminate', async () => {
    await setUpPath();
    expectError(await call('POST', '/v1/pprc/pairs', { primary: 'p', secondary: { volume: 'same' }, mode: 'no-copy' }), 'PPRC_SAME_LSS');
    const est = await call('POST', '/v1/pprc/pairs', { primary: 'p', secondary: { volume: 's' }, mode: 'copy-entire' });
    expect(est.statusCode, est.body).toBe(201);
    expect(est.headers.location).toBe('/v1/pprc/pairs/p');
    expect(est.json()).toMatchObject({ volume: 'p', role: 'source' });
    expect(await ok('POST', '/v1/pprc/pairs/p/wait', {})).toMatchObject({ state: 'DUPLEX', oosTracks: 0 });
    const target = await ok<{ role: string; ess: string[] }>('GET', '/v1/pprc/pairs/s');
    expect(target.role).toBe('target');
    expect(target.ess[1]).toMatch(/^State=target, status=not_suspended/);
    expect((await ok<{ pairs: unknown[] }>('GET', '/v1/pprc/pairs')).pairs).toHaveLength(1);

    await pool.volume('p').write(0, Buffer.alloc(4096, 7));
    expect(await ok('POST', '/v1/pprc/pairs/p/suspend', { from: 'source' })).toMatchObject({ state: 'SUSPENDED', suspended: true });
    await pool.volume('p').write(MiB, Buffer.alloc(4096, 8));
    expect(await ok('GET', '/v1/pprc/pairs/p')).toMatchObject({ oosTracks: 1 });
    // A POST with no body at all (curl -X POST) is the same as {}.
    expect((await app.inject({ method: 'POST', url: '/v1/pprc/pairs/p/suspend' })).statusCode).toBe(200);
    const resumed = await ok<{ state: string }>('POST', '/v1/pprc/pairs/p/resume', {});
    expect(['DUPLEX_PENDING', 'DUPLEX']).toContain(resumed.state);
    expect(await ok('POST', '/v1/pprc/pairs/p/wait', { thresholdPercent: 100 })).toMatchObject({ state: 'DUPLEX' });
    expect(await ok('POST', '/v1/pprc/pairs/p/audit', {})).toMatchObject({ volume: 'p', differing: [] });

    expect(await ok('DELETE', '/v1/pprc/pairs/p')).toMatchObject({ role: 'simplex' });
    expect(await ok('GET', '/v1/pprc/pairs/s')).toMatchObject({ role: 'simplex' });
    expectError(await call('POST', '/v1/pprc/pairs/p/suspend', {}), 'PPRC_NOT_IN_PAIR');
    expectError(await call('POST', '/v1/pprc/pairs/p/resume', {}), 'PPRC_NOT_IN_PAIR');
    expectError(await call('GET', '/v1/pprc/pairs/nope'), 'LUN_NOT_FOUND');
  });

  it('LSS settings, power cycle, freeze and release', async () => {
    await setUpPath();
    await ok('POST', '/v1/pprc/pairs', { primary: 'p', secondary: { volume: 's' }, mode: 'no-copy' }, 201);
    expect(await ok('PUT', '/v1/pprc/lss/10', { criticalHeavy: true, consistencyGroup: true, consistencyTimeoutSec: 5 })).toMatchObject({
      criticalHeavy: true,
      criticalHeavyActive: false,
      consistencyGroup: true,
      consistencyTimeoutSec: 5,
    });
    await ok('POST', '/v1/pprc/power-cycle', {});
    expect(pprc.lssSettings(0x10).criticalHeavyActive).toBe(true);
    expectError(await call('PUT', '/v1/pprc/lss/99', { criticalHeavy: true }), 'LSS_NOT_FOUND');
    await ok('POST', '/v1/pprc/freeze', { lss: ['10'] });
    expect(await ok('GET', '/v1/pprc/pairs/p')).toMatchObject({ state: 'SUSPENDED', suspended: true });
    await ok('POST', '/v1/pprc/release', { lss: [16] });
    await pool.volume('p').write(0, Buffer.alloc(4096, 1));
  });

  it('the overview and OpenAPI document name the PPRC endpoints', async () => {
    expect(await ok('GET', '/v1/pprc')).toMatchObject({ serial: 'FCA24', remotes: [], links: [], paths: [], pairs: [] });
    const doc = await ok<{ paths: Record<string, unknown> }>('GET', '/openapi.json');
    for (const p of ['/v1/pprc/ess', '/v1/pprc/links/{id}/fault', '/v1/pprc/paths', '/v1/pprc/pairs/{name}/resume', '/v1/pprc/secondary/channels']) expect(Object.keys(doc.paths)).toContain(p);
  });
});
