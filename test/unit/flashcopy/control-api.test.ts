/** FlashCopy over the control API and the `lunrig flashcopy` commands (in-process server, real HTTP for the CLI). */
import { Command } from 'commander';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { registerFlashCopyCommands } from '../../../src/cli/commands-flashcopy.js';
import { buildControlApp } from '../../../src/control/app.js';
import { HTTP_STATUS } from '../../../src/control/http-status.js';
import { flashcopyRoutes } from '../../../src/control/routes-flashcopy.js';
import { createControlServer, type ControlServer } from '../../../src/control/server.js';
import { MiB, closeRigs, rig, type Rig } from './harness.js';

let app: FastifyInstance | undefined;
let server: ControlServer | undefined;
afterEach(async () => {
  await app?.close();
  await server?.close();
  app = server = undefined;
  vi.restoreAllMocks();
  await closeRigs();
});

async function api(): Promise<{ r: Rig; call: (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown) => Promise<{ status: number; json: any }> }> {
  const r = await rig({ luns: [{ name: 's', size: 4 * MiB }, { name: 't', size: 4 * MiB }, { name: 'x', size: 4 * MiB, lss: '11' }] });
  app = await buildControlApp(r.pool, { routes: [flashcopyRoutes(() => r.fc)] });
  const call = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown) => {
    const res = await app!.inject({ method, url, ...(body !== undefined && { payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
    return { status: res.statusCode, json: res.body === '' ? undefined : res.json() };
  };
  return { r, call };
}

describe('control API: /v1/flashcopy', () => {
  it('establish (201), query with rsQuery lines, rate, list, withdraw; refusals keep their codes and statuses', async () => {
    const { r, call } = await api();
    const est = await call('POST', '/v1/flashcopy', { source: 's', target: 't', rate: 0, grainSize: '16K' });
    expect(est.status).toBe(201);
    expect(est.json).toMatchObject({ id: 'fc1', source: 's', target: 't', state: 'copying', grainSize: 16384, rate: 0, progress: { remainingGrains: 256 } });
    const q = await call('GET', '/v1/flashcopy/volumes/t');
    expect(q.json).toMatchObject({ role: 'target', ess: ['Volume 001FCA24 found on FCA24:10 as volume number 001', 'State=simplex, status=not_suspended, FlashCopy_state=target, Size=0.0_GB'] });
    const busy = await call('POST', '/v1/flashcopy', { source: 't', target: 's' });
    expect([busy.status, busy.json.error.code]).toEqual([HTTP_STATUS.FC_VOLUME_IN_RELATIONSHIP, 'FC_VOLUME_IN_RELATIONSHIP']);
    const rate = await call('PATCH', '/v1/flashcopy/volumes/s', { rate: '1M' });
    expect(rate.json.rate).toBe(MiB);
    const list = await call('GET', '/v1/flashcopy');
    expect(list.json.relationships.map((x: { id: string }) => x.id)).toEqual(['fc1']);
    const gone = await call('DELETE', '/v1/flashcopy/volumes/t');
    expect(gone.json.withdrawn[0]).toMatchObject({ id: 'fc1', state: 'none' });
    const again = await call('DELETE', '/v1/flashcopy/volumes/t');
    expect([again.status, again.json.error.code]).toEqual([404, 'FC_NO_RELATIONSHIP']);
    const cross = await call('POST', '/v1/flashcopy', { source: 's', target: 'x' });
    expect([cross.status, cross.json.error.code, cross.json.error.details.rule]).toEqual([409, 'FC_DIFFERENT_LSS', 'F-P1']);
    const bad = await call('POST', '/v1/flashcopy', { source: 's', target: 't', mode: 'sideways' });
    expect(bad.status).toBe(400);
    expect(r.fc.list()).toEqual([]);
  });

  it('groups and incremental refresh', async () => {
    const { call } = await api();
    const g = await call('POST', '/v1/flashcopy/groups', { name: 'g1', pairs: [{ source: 's', target: 't' }], incremental: true, rate: 0 });
    expect(g.status).toBe(201);
    expect(g.json).toMatchObject({ name: 'g1', relationships: [{ group: 'g1', incremental: true, changedGrains: 0 }] });
    const refreshed = await call('POST', '/v1/flashcopy/volumes/s/refresh');
    expect(refreshed.json).toMatchObject({ state: 'copying', incremental: true });
    expect((await call('GET', '/v1/flashcopy')).json.groups.map((x: { name: string }) => x.name)).toEqual(['g1']);
    expect((await call('DELETE', '/v1/flashcopy/groups/g1')).json.withdrawn).toHaveLength(1);
    expect((await call('DELETE', '/v1/flashcopy/groups/g1')).json.error.code).toBe('FC_GROUP_NOT_FOUND');
  });

  it('the OpenAPI document lists the FlashCopy operations', async () => {
    await api();
    const doc = (await app!.inject({ method: 'GET', url: '/openapi.json' })).json();
    const ops = Object.values(doc.paths as Record<string, Record<string, { operationId: string }>>).flatMap((p) => Object.values(p).map((o) => o.operationId));
    expect(ops).toEqual(expect.arrayContaining(['establishFlashCopy', 'queryFlashCopy', 'withdrawFlashCopy', 'listFlashCopies', 'setFlashCopyRate', 'refreshFlashCopy', 'establishFlashCopyGroup', 'withdrawFlashCopyGroup']));
  });
});

describe('lunrig flashcopy (CLI)', () => {
  async function cli(url: string, args: string[]): Promise<string> {
    let out = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    const program = new Command('lunrig').option('--json').exitOverride();
    registerFlashCopyCommands(program);
    try {
      await program.parseAsync(['node', 'lunrig', ...args, '--server', url]);
    } finally {
      vi.restoreAllMocks();
    }
    return out;
  }

  it('establish --wait, list, query, rate, withdraw, and --json', async () => {
    const r = await rig({ luns: [{ name: 's', size: 4 * MiB }, { name: 't', size: 4 * MiB }, { name: 'u', size: 4 * MiB }] });
    server = await createControlServer(r.pool, { port: 0, routes: [flashcopyRoutes(() => r.fc)] });
    const url = server.url;
    expect(await cli(url, ['flashcopy', 'establish', 's', 't', '--grain', '256K', '--wait'])).toMatch(/established FlashCopy fc1: s -> t \(COPY, 256K grains\)[^]*completed: s and t are independent/);
    expect(await cli(url, ['flashcopy', 'establish', 's', 'u', '--nocopy'])).toMatch(/fc2: s -> u \(NOCOPY/);
    const list = await cli(url, ['flashcopy', 'list']);
    expect(list.split('\n')[0]).toMatch(/^ID\s+SOURCE\s+TARGET\s+MODE\s+STATE/);
    expect(list).toMatch(/fc2\s+s\s+u\s+nocopy\s+copy-on-write/);
    const query = await cli(url, ['flashcopy', 'query', 'u']);
    expect(query).toMatch(/^Volume 002FCA24 found on FCA24:10 as volume number 002\nState=simplex, status=not_suspended, FlashCopy_state=target, Size=0.0_GB\n/);
    const json = JSON.parse(await cli(url, ['--json', 'flashcopy', 'query', 's']));
    expect(json).toMatchObject({ role: 'source', relationships: [{ id: 'fc2' }] });
    expect(await cli(url, ['flashcopy', 'withdraw', 'u'])).toMatch(/withdrew FlashCopy fc2: s -> u/);
    expect(await cli(url, ['flashcopy', 'list'])).toBe('no FlashCopy relationships\n');
    await expect(cli(url, ['flashcopy', 'withdraw', 'u'])).rejects.toMatchObject({ code: 'FC_NO_RELATIONSHIP' });
  });
});
