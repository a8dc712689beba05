/** Tasks over the control API (src/control/routes-tasks.ts): statuses and codes for each route (spec §4.2, FC-23, FC-25's log). */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildControlApp } from '../../../src/control/app.js';
import { taskRoutes } from '../../../src/control/routes-tasks.js';
import { TaskManager } from '../../../src/copy/tasks/index.js';
import { MiB, closeRigs, rig } from '../flashcopy/harness.js';

let app: FastifyInstance | undefined;
let tasks: TaskManager | undefined;
afterEach(async () => {
  await app?.close();
  await tasks?.close();
  app = tasks = undefined;
  await closeRigs();
});

describe('control API: /v1/tasks', () => {
  it('§4.2, FC-23 over HTTP: create (201), list, show, execute (a refusal is a failed execution, 200), progress, log; TASK_* codes map to 404/409', async () => {
    const r = await rig({ luns: [{ name: 's', size: 4 * MiB }, { name: 't', size: 4 * MiB }, { name: 'x', size: 4 * MiB, lss: '11' }] });
    const t = await TaskManager.open(r.dir, { context: { flashcopy: r.fc }, clock: r.clock });
    tasks = t;
    app = await buildControlApp(r.pool, { routes: [taskRoutes(() => t)] });
    const call = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown) => {
      const res = await app!.inject({ method, url, ...(body !== undefined && { payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
      return { status: res.statusCode, json: res.body === '' ? undefined : res.json() };
    };

    const created = await call('POST', '/v1/tasks', { name: 'fc1', kind: 'flashcopy.establish', params: { pairs: [{ source: 's', target: 't' }], mode: 'nocopy' } });
    expect(created).toMatchObject({ status: 201, json: { name: 'fc1', group: null, lastExecution: null, summary: 'FlashCopy NOCOPY s->t' } });
    expect((await call('POST', '/v1/tasks', { name: 'fc1', kind: 'flashcopy.withdraw', params: { volumes: ['s'] } })).json.error.code).toBe('TASK_EXISTS');
    expect((await call('POST', '/v1/tasks', { name: 'bad', kind: 'flashcopy.establish', params: { pairs: [{ source: 's', target: 'x' }] } })).status).toBe(201);
    expect(await call('POST', '/v1/tasks', { name: 'g1', kind: 'group', members: ['fc1'] })).toMatchObject({ status: 201, json: { members: ['fc1'] } });
    expect(await call('POST', '/v1/tasks', { name: 'g2', kind: 'group', members: ['g1'] })).toMatchObject({ status: 409, json: { error: { code: 'TASK_GROUP_NESTED' } } });
    expect(await call('PATCH', '/v1/tasks/fc1', { description: 'x' })).toMatchObject({ status: 409, json: { error: { code: 'TASK_IN_GROUP' } } });
    expect(await call('DELETE', '/v1/tasks/g1/members/fc1')).toMatchObject({ status: 200, json: { members: [] } });
    expect(await call('PATCH', '/v1/tasks/fc1', { description: 'x' })).toMatchObject({ status: 200, json: { description: 'x' } });
    expect(await call('POST', '/v1/tasks/g1/members', { task: 'fc1' })).toMatchObject({ status: 200, json: { members: ['fc1'] } });
    expect(await call('GET', '/v1/tasks/nope')).toMatchObject({ status: 404, json: { error: { code: 'TASK_NOT_FOUND' } } });
    expect(await call('POST', '/v1/tasks/nope/execute')).toMatchObject({ status: 404, json: { error: { code: 'TASK_NOT_FOUND' } } });

    const run = await call('POST', '/v1/tasks/g1/execute');
    expect(run).toMatchObject({ status: 200, json: { task: 'g1', status: 'succeeded', error: null } });
    expect(r.fc.query('s').role).toBe('source');
    const refused = await call('POST', '/v1/tasks/bad/execute');
    expect(refused).toMatchObject({ status: 200, json: { task: 'bad', status: 'failed', error: { code: 'FC_DIFFERENT_LSS' } } });
    expect(await call('GET', '/v1/tasks/g1/progress')).toMatchObject({ status: 200, json: { running: false, items: [{ name: 's->t', state: 'copy-on-write' }] } });
    const log = await call('GET', '/v1/tasks/fc1/executions');
    expect(log.json.executions).toMatchObject([{ task: 'fc1', status: 'succeeded', parent: run.json.id }]);
    const list = await call('GET', '/v1/tasks');
    expect(list.json.kinds).toEqual(['flashcopy.establish', 'flashcopy.withdraw']);
    expect(list.json.tasks.map((x: { name: string; lastExecution: { status: string } | null }) => [x.name, x.lastExecution?.status ?? null])).toEqual([
      ['fc1', 'succeeded'],
      ['bad', 'failed'],
      ['g1', 'succeeded'],
    ]);
    expect(await call('DELETE', '/v1/tasks/fc1')).toMatchObject({ status: 409, json: { error: { code: 'TASK_IN_GROUP' } } });
    expect((await call('DELETE', '/v1/tasks/g1')).status).toBe(204);
    expect((await call('DELETE', '/v1/tasks/fc1')).status).toBe(204);
  });
});
