/** Copy Services tasks and task groups (spec §4.2, FC-22, FC-23, FC-25, CP-03) over a real pool and FlashCopyManager. */
import { afterEach, describe, expect, it } from 'vitest';
import { resetCopyServices, TaskManager, defaultOperationKinds, type OperationKind } from '../../../src/copy/tasks/index.js';
import { BLOCK, KiB, MiB, closeRigs, expectCode, expectedPattern, fillPattern, readBuf, rig, uniform, type Rig } from '../flashcopy/harness.js';

const open: TaskManager[] = [];
afterEach(async () => {
  for (const t of open.splice(0)) await t.close().catch(() => undefined);
  await closeRigs();
});

async function tasksOn(r: Rig, kinds = defaultOperationKinds()): Promise<TaskManager> {
  const t = await TaskManager.open(r.dir, { context: { flashcopy: r.fc }, kinds, clock: r.clock });
  open.push(t);
  return t;
}

/** A test operation kind that waits until released: shows parallelism and in-flight runs without timing. */
function gateKind() {
  const started: string[] = [];
  const waiters: Array<() => void> = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const kind: OperationKind<{ tag: string }> = {
    kind: 'test.gate',
    describe: (p) => `gate ${p.tag}`,
    validate: (raw) => ({ tag: String((raw as { tag?: unknown }).tag ?? '') }),
    async execute(p) {
      started.push(p.tag);
      for (const w of waiters.splice(0)) w();
      await released;
      return { tag: p.tag };
    },
  };
  const startedCount = async (n: number): Promise<void> => {
    while (started.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
  };
  return { kind, started, startedCount, release: () => release() };
}

const P = 1;

describe('task definitions', () => {
  it('CP-03: task names are unique, at most 16 characters and without blanks; "first found" is the earliest created', async () => {
    const r = await rig({ luns: [{ name: 's', size: MiB }, { name: 't', size: MiB }] });
    const tasks = await tasksOn(r);
    const params = { pairs: [{ source: 's', target: 't' }] };
    await tasks.create({ name: 'fc1', kind: 'flashcopy.establish', params });
    await expectCode(tasks.create({ name: 'fc1', kind: 'flashcopy.withdraw', params: { volumes: ['s'] } }), 'TASK_EXISTS');
    await expectCode(tasks.create({ name: 'a'.repeat(17), kind: 'flashcopy.establish', params }), 'INVALID_ARGUMENT');
    await expectCode(tasks.create({ name: 'my task', kind: 'flashcopy.establish', params }), 'INVALID_ARGUMENT');
    await tasks.create({ name: 'a'.repeat(16), kind: 'flashcopy.withdraw', params: { volumes: ['t'] } });
    await expectCode(tasks.create({ name: 'bad', kind: 'flashcopy.establish', params: { pairs: [] } }), 'INVALID_ARGUMENT');
    await expectCode(tasks.create({ name: 'bad', kind: 'pprc.nothing', params: {} }), 'INVALID_ARGUMENT');
    expect(tasks.list().map((t) => [t.name, t.kind, t.seq])).toEqual([
      ['fc1', 'flashcopy.establish', 1],
      ['a'.repeat(16), 'flashcopy.withdraw', 2],
    ]);
    expect(tasks.show('fc1').summary).toBe('FlashCopy COPY s->t');
    await expectCode(async () => tasks.show('nope'), 'TASK_NOT_FOUND');
  });

  it('FC-23: a task group cannot be put into another group, and a grouped task cannot be changed or deleted until ungrouped', async () => {
    const r = await rig({ luns: [{ name: 's', size: MiB }, { name: 't', size: MiB }] });
    const tasks = await tasksOn(r);
    await tasks.create({ name: 'fc1', kind: 'flashcopy.establish', params: { pairs: [{ source: 's', target: 't' }] } });
    await tasks.create({ name: 'wd1', kind: 'flashcopy.withdraw', params: { volumes: ['s'] } });
    await tasks.create({ name: 'g1', kind: 'group', members: ['fc1'] });
    await tasks.create({ name: 'g2', kind: 'group', members: [] });
    await expectCode(tasks.group('g2', 'g1'), 'TASK_GROUP_NESTED');
    await expectCode(tasks.create({ name: 'g3', kind: 'group', members: ['g1'] }), 'TASK_GROUP_NESTED');
    await expectCode(tasks.group('g2', 'fc1'), 'TASK_IN_GROUP'); // a task is in one group at a time
    await expectCode(tasks.update('fc1', { params: { pairs: [{ source: 's', target: 't' }], mode: 'nocopy' } }), 'TASK_IN_GROUP');
    await expectCode(tasks.delete('fc1'), 'TASK_IN_GROUP');
    expect(tasks.show('fc1')).toMatchObject({ group: 'g1', params: { pairs: [{ source: 's', target: 't' }] } });
    await tasks.ungroup('g1', 'fc1');
    const changed = await tasks.update('fc1', { params: { pairs: [{ source: 's', target: 't' }], mode: 'nocopy' } });
    expect(changed).toMatchObject({ group: null, params: { mode: 'nocopy' } });
    await tasks.group('g2', 'fc1');
    await tasks.group('g2', 'wd1');
    await tasks.delete('g2'); // deleting a group frees its tasks
    expect(tasks.show('fc1').group).toBeNull();
    await tasks.delete('fc1');
    expect(tasks.list().map((t) => t.name)).toEqual(['wd1', 'g1']);
  });

  it('tasks, groups and the last execution status survive a restart of the task manager (persisted in the pool dir)', async () => {
    const r = await rig({ luns: [{ name: 's', size: MiB }, { name: 't', size: MiB }] });
    const tasks = await tasksOn(r);
    await tasks.create({ name: 'fc1', kind: 'flashcopy.establish', params: { pairs: [{ source: 's', target: 't' }], mode: 'nocopy', grainSize: '4K' } });
    await tasks.create({ name: 'grp', kind: 'group', members: ['fc1'] });
    const run = await tasks.execute('fc1');
    expect(run.status).toBe('succeeded');
    await tasks.close();
    const again = await tasksOn(r);
    expect(again.show('fc1')).toMatchObject({ group: 'grp', params: { mode: 'nocopy', grainSize: '4K' }, lastExecution: { id: run.id, status: 'succeeded' } });
    expect(again.lost).toEqual([]);
    await expectCode(again.update('fc1', { description: 'x' }), 'TASK_IN_GROUP');
  });
});

describe('task execution', () => {
  it('FC-22: a task with six pairs in one LSS establishes all six with one T0 before execute returns; later source writes do not reach the targets', async () => {
    const size = MiB;
    const ids = [0, 1, 2, 3, 4, 5];
    const r = await rig({ luns: ids.flatMap((i) => [{ name: `s${i}`, size }, { name: `t${i}`, size }]) });
    for (const i of ids) await fillPattern(r.pool.volume(`s${i}`), P + i, size);
    const tasks = await tasksOn(r);
    await tasks.create({ name: 'fc6', kind: 'flashcopy.establish', params: { pairs: ids.map((i) => ({ source: `s${i}`, target: `t${i}` })), rate: 0 } });
    const run = await tasks.execute('fc6');
    expect(run.status).toBe('succeeded');
    const rels = r.fc.list();
    expect(rels).toHaveLength(6);
    expect(new Set(rels.map((x) => x.t0)).size).toBe(1);
    await Promise.all(ids.map((i) => r.pool.volume(`s${i}`).write(0, uniform(0xee, size))));
    for (const i of ids) expect((await readBuf(r.pool.volume(`t${i}`), 0, size)).equals(expectedPattern(P + i, 0, size))).toBe(true);
    expect(tasks.show('fc6').lastExecution).toMatchObject({ status: 'succeeded', error: null });
  });

  it('FC-15 through a task: an establish across LSSs fails with FC_DIFFERENT_LSS, logged as failed, both volumes stay without FlashCopy', async () => {
    const r = await rig({ luns: [{ name: 's', size: MiB }, { name: 'x', size: MiB, lss: '11' }] });
    const tasks = await tasksOn(r);
    await tasks.create({ name: 'cross', kind: 'flashcopy.establish', params: { pairs: [{ source: 's', target: 'x' }] } });
    const run = await tasks.execute('cross');
    expect(run).toMatchObject({ status: 'failed', error: { code: 'FC_DIFFERENT_LSS' } });
    expect(r.fc.query('s').role).toBe('none');
    expect(r.fc.query('x').role).toBe('none');
    expect(tasks.show('cross').lastExecution?.status).toBe('failed');
  });

  it('a task group runs its tasks in parallel (fc1 on LSS 10 and fc2 on LSS 11, plus a plug-in operation kind); withdraw tasks end them', async () => {
    const r = await rig({ luns: [{ name: 'a', size: MiB }, { name: 'b', size: MiB }, { name: 'x', size: MiB, lss: '11' }, { name: 'y', size: MiB, lss: '11' }] });
    const gate = gateKind();
    const tasks = await tasksOn(r, defaultOperationKinds().register(gate.kind));
    await tasks.create({ name: 'fc1', kind: 'flashcopy.establish', params: { pairs: [{ source: 'a', target: 'b' }], mode: 'nocopy' } });
    await tasks.create({ name: 'fc2', kind: 'flashcopy.establish', params: { pairs: [{ source: 'x', target: 'y' }], mode: 'nocopy' } });
    await tasks.create({ name: 'gate1', kind: 'test.gate', params: { tag: 'one' } });
    await tasks.create({ name: 'gate2', kind: 'test.gate', params: { tag: 'two' } });
    await tasks.create({ name: 'fc_group1', kind: 'group', members: ['fc1', 'fc2', 'gate1', 'gate2'] });
    const running = tasks.execute('fc_group1');
    // Both gates start before either is released: the group does not run its tasks one after another.
    await gate.startedCount(2);
    expect(gate.started.sort()).toEqual(['one', 'two']);
    gate.release();
    const run = await running;
    expect(run.status).toBe('succeeded');
    expect(r.fc.list().map((x) => `${x.source}->${x.target}`).sort()).toEqual(['a->b', 'x->y']);
    const members = tasks.executions().filter((e) => e.parent === run.id);
    expect(members.map((e) => [e.task, e.status]).sort()).toEqual([
      ['fc1', 'succeeded'],
      ['fc2', 'succeeded'],
      ['gate1', 'succeeded'],
      ['gate2', 'succeeded'],
    ]);
    await tasks.create({ name: 'wd', kind: 'flashcopy.withdraw', params: { volumes: ['b', 'y'] } });
    expect((await tasks.execute('wd')).status).toBe('succeeded');
    expect(r.fc.list()).toEqual([]);
    // A second withdraw finds nothing: FX7, the task fails.
    expect(await tasks.execute('wd')).toMatchObject({ status: 'failed', error: { code: 'FC_NO_RELATIONSHIP' } });
  });

  it('progress (rsQueryComplete): a paused COPY task is running below 100%; NOCOPY and ended copies are not running', async () => {
    const size = 2 * MiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }, { name: 'u', size }, { name: 'v', size }] });
    const tasks = await tasksOn(r);
    await tasks.create({ name: 'cp', kind: 'flashcopy.establish', params: { pairs: [{ source: 's', target: 't' }], rate: 0, grainSize: '64K' } });
    await tasks.create({ name: 'nc', kind: 'flashcopy.establish', params: { pairs: [{ source: 'u', target: 'v' }], mode: 'nocopy' } });
    expect(tasks.progress('cp')).toMatchObject({ running: false, percent: 100 }); // not established: nothing runs
    await tasks.execute('cp');
    await tasks.execute('nc');
    await r.pool.volume('s').write(0, uniform(9, BLOCK)); // copy-on-write of one of 32 grains
    const p = tasks.progress('cp');
    expect(p.running).toBe(true);
    expect(p.percent).toBeCloseTo(100 / 32, 0);
    expect(tasks.progress('nc').running).toBe(false);
  });
});

describe('Copy Services server reset', () => {
  it('FC-25: after a reset a relationship keeps its bitmap and T content, and a task that had not reported success is reported lost', async () => {
    const size = 2 * MiB;
    const grain = 64 * KiB;
    const r = await rig({ luns: [{ name: 's', size }, { name: 't', size }] });
    const gate = gateKind();
    const kinds = () => defaultOperationKinds().register(gate.kind);
    let tasks = await tasksOn(r, kinds());
    const s = r.pool.volume('s');
    await fillPattern(s, P, size);
    await tasks.create({ name: 'snap', kind: 'flashcopy.establish', params: { pairs: [{ source: 's', target: 't' }], mode: 'nocopy' } });
    await tasks.create({ name: 'slow', kind: 'test.gate', params: { tag: 'slow' } });
    expect((await tasks.execute('snap')).status).toBe('succeeded');
    for (const g of [1, 5, 9]) await s.write(g * grain, uniform(3, BLOCK));
    const before = r.fc.list()[0]!;
    const inFlight = tasks.execute('slow');
    await gate.startedCount(1);

    const after = await resetCopyServices(r.pool, { flashcopy: r.fc, tasks }, { flashcopy: { clock: r.clock }, tasks: { kinds: kinds(), clock: r.clock } });
    r.fc = after.flashcopy;
    tasks = after.tasks;
    open.push(tasks);
    gate.release();
    await inFlight; // it finishes against the closed manager: its success is never recorded
    expect(after.lost.map((e) => [e.task, e.status])).toEqual([['slow', 'lost']]);
    expect(tasks.show('slow').lastExecution?.status).toBe('lost');
    expect(tasks.show('snap').lastExecution?.status).toBe('succeeded');
    expect(r.fc.list()[0]).toMatchObject({ id: before.id, t0: before.t0, progress: before.progress });
    expect((await readBuf(r.pool.volume('t'), 0, size)).equals(expectedPattern(P, 0, size))).toBe(true);
    // Copy-on-write still works after the reset.
    await s.write(20 * grain, uniform(4, BLOCK));
    expect((await readBuf(r.pool.volume('t'), 20 * grain, BLOCK)).equals(expectedPattern(P, 20 * grain, BLOCK))).toBe(true);
  });
});
