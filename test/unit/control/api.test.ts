import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BODY_LIMIT, buildControlApp } from '../../../src/control/app.js';
import { HTTP_STATUS } from '../../../src/control/http-status.js';
import { ERROR_CODES, type ErrorCode } from '../../../src/errors.js';
import { Pool } from '../../../src/store/pool.js';
import { GiB, MiB } from '../../../src/util/size.js';
import { VERSION } from '../../../src/version.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const temp = tempDirs('lunrig-api-');
let pool: Pool;
let app: FastifyInstance;

beforeEach(async () => {
  pool = await Pool.open({ dir: temp.make(), serial: 'FCA24', engine: 'fs' });
  app = await buildControlApp(pool);
});

afterEach(async () => {
  await app.close();
  await pool.close();
  temp.cleanup();
});

type Inject = { method: 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH'; url: string; body?: unknown; payload?: string; headers?: Record<string, string> };

function call({ method, url, body, payload, headers }: Inject): Promise<LightMyRequestResponse> {
  if (payload !== undefined) return app.inject({ method, url, payload, headers: { 'content-type': 'application/json', ...headers } });
  if (body !== undefined) return app.inject({ method, url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
  return app.inject({ method, url, headers });
}

/** The response is our error shape, its status is the one mapping for the code, and it leaks no stack. */
function expectError(res: LightMyRequestResponse, code: ErrorCode, status: number): { code: string; message: string; details?: Record<string, unknown> } {
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json() as { error: { code: string; message: string; details?: Record<string, unknown> } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  expect(res.statusCode).toBe(status);
  expect(res.statusCode).toBe(HTTP_STATUS[code]);
  expect(typeof body.error.message).toBe('string');
  expect(res.body).not.toMatch(/\bat .*\.(ts|js):\d+/);
  return body.error;
}

async function lunNames(): Promise<string[]> {
  const res = await call({ method: 'GET', url: '/v1/luns' });
  return (res.json() as { luns: Array<{ name: string }> }).luns.map((l) => l.name);
}

describe('GET /v1/system', () => {
  it('CP-01: reports version, serial and LSS addresses 2105:<serial>:<LL>', async () => {
    await pool.createLun({ name: 'a', size: '1G', lss: '11' });
    const res = await call({ method: 'GET', url: '/v1/system' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ version: VERSION, apiVersion: 'v1', pool: { serial: 'FCA24', lunCount: 1, dir: pool.info().dir } });
    expect(body.pool.lssList).toEqual([
      { lss: 0x10, address: '2105:FCA24:10', luns: 0, capacity: 256 },
      { lss: 0x11, address: '2105:FCA24:11', luns: 1, capacity: 256 },
    ]);
  });
});

describe('LUN endpoints', () => {
  it('CP-01: POST /v1/luns creates a LUN with an 8-char volume id ending in the serial (201, Location)', async () => {
    const res = await call({ method: 'POST', url: '/v1/luns', body: { name: 'data0', size: '10G', lss: '11', readOnly: true } });
    expect(res.statusCode).toBe(201);
    expect(res.headers.location).toBe('/v1/luns/data0');
    const lun = res.json();
    expect(lun).toMatchObject({ name: 'data0', size: 10 * GiB, lss: 0x11, lssAddress: '2105:FCA24:11', volumeNumber: 0, volumeId: '100FCA24', readOnly: true });
    expect(lun.volumeId).toMatch(/^[0-9A-F]{3}FCA24$/);
    expect(lun.uniqueId).toMatch(/^[0-9a-f]{32}$/);
    expect(Number.isNaN(Date.parse(lun.createdAt))).toBe(false);
    expect(pool.lunInfo('data0')).toEqual(lun);
  });

  it('POST /v1/luns takes a size in bytes and defaults to LSS 0x10, read-write', async () => {
    const res = await call({ method: 'POST', url: '/v1/luns', body: { name: 'b', size: 4 * MiB } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ size: 4 * MiB, lss: 0x10, readOnly: false, volumeId: '000FCA24' });
  });

  it('GET /v1/luns lists every LUN in creation order', async () => {
    expect((await call({ method: 'GET', url: '/v1/luns' })).json()).toEqual({ luns: [] });
    await pool.createLun({ name: 'x', size: MiB });
    await pool.createLun({ name: 'y', size: MiB, lss: 0x12 });
    const res = await call({ method: 'GET', url: '/v1/luns' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ luns: pool.listLuns() });
  });

  it('GET /v1/luns/:name describes the LUN and the bytes it occupies', async () => {
    await pool.createLun({ name: 'x', size: GiB });
    const res = await call({ method: 'GET', url: '/v1/luns/x' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ...pool.lunInfo('x'), allocatedBytes: (await pool.lunUsage('x')).allocatedBytes });
    // Sparse: a fresh 1 GiB LUN occupies (almost) nothing.
    expect(res.json().allocatedBytes).toBeLessThan(MiB);
  });

  it('POST /v1/luns/:name/grow grows the LUN; the same size is a no-op', async () => {
    await pool.createLun({ name: 'x', size: GiB });
    const res = await call({ method: 'POST', url: '/v1/luns/x/grow', body: { size: '2G' } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ name: 'x', size: 2 * GiB });
    expect(pool.lunInfo('x').size).toBe(2 * GiB);
    const same = await call({ method: 'POST', url: '/v1/luns/x/grow', body: { size: 2 * GiB } });
    expect(same.statusCode).toBe(200);
    expect(same.json().size).toBe(2 * GiB);
  });

  it('DELETE /v1/luns/:name deletes the LUN (204, empty body)', async () => {
    await pool.createLun({ name: 'x', size: MiB });
    await pool.createLun({ name: 'y', size: MiB });
    const res = await call({ method: 'DELETE', url: '/v1/luns/x' });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expect(pool.listLuns().map((l) => l.name)).toEqual(['y']);
    // A JSON content type with an empty body, as `curl -H 'content-type: application/json'` sends, is no body.
    const withType = await call({ method: 'DELETE', url: '/v1/luns/y', payload: '' });
    expect(withType.statusCode).toBe(204);
    expect(pool.listLuns()).toEqual([]);
  });
});

describe('refused requests answer our error shape and change nothing', () => {
  beforeEach(async () => {
    await pool.createLun({ name: 'x', size: GiB });
  });

  afterEach(async () => {
    expect(await lunNames()).toEqual(['x']);
    expect(pool.lunInfo('x').size).toBe(GiB);
  });

  it('duplicate name: 409 LUN_EXISTS', async () => {
    const error = expectError(await call({ method: 'POST', url: '/v1/luns', body: { name: 'x', size: '2G' } }), 'LUN_EXISTS', 409);
    expect(error.message).toContain("'x'");
    expect(error.details).toEqual({ lun: 'x' });
  });

  it.each([
    ['size 0', 0],
    ["size '0'", '0'],
    ['not a multiple of 512', 1000],
    ['unparsable', '10X'],
    ['negative', -512],
    ['fractional bytes', 1.5],
    ['not a number or string', true],
  ])('%s: 400 INVALID_SIZE', async (_label, size) => {
    expectError(await call({ method: 'POST', url: '/v1/luns', body: { name: 'y', size } }), 'INVALID_SIZE', 400);
  });

  it('missing size: 400 INVALID_ARGUMENT naming the field', async () => {
    const error = expectError(await call({ method: 'POST', url: '/v1/luns', body: { name: 'y' } }), 'INVALID_ARGUMENT', 400);
    expect(error.message).toContain('size');
  });

  it('bad LUN name: 400 INVALID_ARGUMENT', async () => {
    expectError(await call({ method: 'POST', url: '/v1/luns', body: { name: '../etc', size: '1G' } }), 'INVALID_ARGUMENT', 400);
    expectError(await call({ method: 'POST', url: '/v1/luns', body: { name: '', size: '1G' } }), 'INVALID_ARGUMENT', 400);
  });

  it('schema violations (unknown field, wrong type, no body): 400 INVALID_ARGUMENT', async () => {
    const unknown = expectError(await call({ method: 'POST', url: '/v1/luns', body: { name: 'y', size: '1G', readonly: true } }), 'INVALID_ARGUMENT', 400);
    expect(unknown.details?.problems).toBeDefined();
    expectError(await call({ method: 'POST', url: '/v1/luns', body: { name: 'y', size: '1G', readOnly: 'yes' } }), 'INVALID_ARGUMENT', 400);
    expectError(await call({ method: 'POST', url: '/v1/luns', body: { name: 7, size: '1G' } }), 'INVALID_ARGUMENT', 400);
    expectError(await call({ method: 'POST', url: '/v1/luns', body: ['y'] }), 'INVALID_ARGUMENT', 400);
    expectError(await call({ method: 'POST', url: '/v1/luns' }), 'INVALID_ARGUMENT', 400);
  });

  it('LSS outside 10..1f: 404 LSS_NOT_FOUND', async () => {
    expectError(await call({ method: 'POST', url: '/v1/luns', body: { name: 'y', size: '1G', lss: '20' } }), 'LSS_NOT_FOUND', 404);
    expectError(await call({ method: 'POST', url: '/v1/luns', body: { name: 'y', size: '1G', lss: 'zz' } }), 'INVALID_ARGUMENT', 400);
  });

  it('grow smaller: 409 SHRINK_NOT_SUPPORTED; grow to a bad size: 400 INVALID_SIZE', async () => {
    expectError(await call({ method: 'POST', url: '/v1/luns/x/grow', body: { size: '512M' } }), 'SHRINK_NOT_SUPPORTED', 409);
    expectError(await call({ method: 'POST', url: '/v1/luns/x/grow', body: { size: '1.1G' } }), 'INVALID_SIZE', 400);
    expectError(await call({ method: 'POST', url: '/v1/luns/x/grow', body: {} }), 'INVALID_ARGUMENT', 400);
  });

  it('unknown LUN: 404 LUN_NOT_FOUND for info, grow and delete', async () => {
    expectError(await call({ method: 'GET', url: '/v1/luns/nope' }), 'LUN_NOT_FOUND', 404);
    expectError(await call({ method: 'POST', url: '/v1/luns/nope/grow', body: { size: '2G' } }), 'LUN_NOT_FOUND', 404);
    const error = expectError(await call({ method: 'DELETE', url: '/v1/luns/nope' }), 'LUN_NOT_FOUND', 404);
    expect(error.message).toBe("no LUN named 'nope'");
  });

  it('malformed JSON: 400 INVALID_ARGUMENT', async () => {
    const error = expectError(await call({ method: 'POST', url: '/v1/luns', payload: '{"name": "y", "size": ' }), 'INVALID_ARGUMENT', 400);
    expect(error.message).toBe('request body is not valid JSON');
    expectError(await call({ method: 'POST', url: '/v1/luns', payload: "{'name': 'y'}" }), 'INVALID_ARGUMENT', 400);
    expectError(await call({ method: 'POST', url: '/v1/luns', payload: '' }), 'INVALID_ARGUMENT', 400);
  });

  it('prototype poisoning in JSON: 400 INVALID_ARGUMENT', async () => {
    expectError(await call({ method: 'POST', url: '/v1/luns', payload: '{"name":"y","size":"1G","__proto__":{"readOnly":true}}' }), 'INVALID_ARGUMENT', 400);
  });

  it('wrong content type: 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'application/octet-stream']) {
      const res = await app.inject({ method: 'POST', url: '/v1/luns', payload: 'name=y&size=1G', headers: { 'content-type': type } });
      expectError(res, 'UNSUPPORTED_MEDIA_TYPE', 415);
    }
  });

  it('oversized body: 413 PAYLOAD_TOO_LARGE', async () => {
    const payload = JSON.stringify({ name: 'y', size: '1G', pad: 'x'.repeat(BODY_LIMIT) });
    expectError(await call({ method: 'POST', url: '/v1/luns', payload }), 'PAYLOAD_TOO_LARGE', 413);
  });

  it('unknown route or method: 404 ROUTE_NOT_FOUND', async () => {
    expectError(await call({ method: 'GET', url: '/v1/nothing' }), 'ROUTE_NOT_FOUND', 404);
    expectError(await call({ method: 'GET', url: '/luns' }), 'ROUTE_NOT_FOUND', 404);
    expectError(await call({ method: 'PUT', url: '/v1/luns/x', body: { size: '2G' } }), 'ROUTE_NOT_FOUND', 404);
  });

  it('a malformed URL: 400 INVALID_ARGUMENT', async () => {
    expectError(await call({ method: 'GET', url: '/v1/luns/%zz' }), 'INVALID_ARGUMENT', 400);
  });
});

describe('unexpected failures', () => {
  it('answer 500 INTERNAL without the internal message or stack', async () => {
    const broken = { ...pool, listLuns: () => { throw new Error('secret path /var/x at foo.ts:12'); } } as unknown as Pool;
    const failing = await buildControlApp(broken);
    try {
      const res = await failing.inject({ method: 'GET', url: '/v1/luns' });
      expectError(res, 'INTERNAL', 500);
      expect(res.body).not.toContain('secret');
    } finally {
      await failing.close();
    }
  });
});

describe('HTTP_STATUS', () => {
  it('maps every error code to a 4xx or 5xx status', () => {
    for (const code of ERROR_CODES) expect(HTTP_STATUS[code], code).toBeGreaterThanOrEqual(400);
    for (const code of ERROR_CODES) expect(HTTP_STATUS[code], code).toBeLessThan(600);
  });
});

describe('GET /openapi.json', () => {
  it('is an OpenAPI 3 document listing the LUN paths with their schemas', async () => {
    const res = await call({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: VERSION });
    expect(Object.keys(doc.paths).sort()).toEqual(['/v1/exports', '/v1/luns', '/v1/luns/{name}', '/v1/luns/{name}/grow', '/v1/system']);
    expect(Object.keys(doc.paths['/v1/luns']).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/v1/luns/{name}']).sort()).toEqual(['delete', 'get', 'patch']);
    const create = doc.paths['/v1/luns'].post;
    expect(create.requestBody.content['application/json'].schema.required).toEqual(['name', 'size']);
    expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(['201', '4XX', '5XX']));
    expect(doc.paths['/v1/luns/{name}'].get.parameters).toEqual([expect.objectContaining({ name: 'name', in: 'path', required: true })]);
    // The error body is one shared component, and every $ref in the document resolves.
    expect(doc.components.schemas.Error.properties.error.required).toEqual(['code', 'message']);
    expect(doc.components.schemas.Error.properties.error.properties.code.enum).toEqual([...ERROR_CODES]);
    const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      const pointer = ref.slice('"$ref":"#/'.length, -1).split('/');
      expect(pointer.reduce((node: any, key) => node?.[key], doc), ref).toBeDefined();
    }
    const operationIds = Object.values(doc.paths as Record<string, Record<string, { operationId: string }>>).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
    expect(operationIds.sort()).toEqual(['createLun', 'deleteLun', 'getLun', 'getSystem', 'growLun', 'listExports', 'listLuns', 'updateLun']);
    // Every operation documents its success and error responses.
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(Object.keys(op.responses).some((s) => s.startsWith('2')), `${method} ${path}`).toBe(true);
        expect(op.responses['4XX'], `${method} ${path}`).toBeDefined();
      }
    }
  });
});

