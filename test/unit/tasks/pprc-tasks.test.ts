/**
 * PPRC and path tasks (src/copy/tasks/pprc-kinds.ts; spec §4.2, §3.2, §3.3,
 * §3.8, §3.9, PP-36, PP-37) over two ESSs of the PPRC harness on one virtual
 * clock, and rsQueryComplete through the real ESS CLI shim (runEss) against
 * an in-process control API. The link between E1 and E2 is throttled to one
 * 64 KiB track per virtual second, so the copy moves only when a test moves
 * the clock: "large volume" in PP-37 is a copy that cannot finish before the
 * establish returns.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runEss, type EssIo } from '../../../src/cli/commands-ess.js';
import { createControlServer, type ControlServer } from '../../../src/control/server.js';
import { taskRoutes } from '../../../src/control/routes-tasks.js';
import { TaskManager, defaultOperationKinds, withPprcKinds } from '../../../src/copy/tasks/index.js';
import type { PprcManager } from '../../../src/copy/pprc/index.js';
import type { VirtualClock } from '../../../src/util/clock.js';
import { TRACK, closeAll, connect, expectCode, site, type Ess, type Site } from '../pprc/harness.js';

const managers: TaskManager[] = [];
const servers: ControlServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close().catch(() => undefined);
  for (const t of managers.splice(0)) await t.close().catch(() => undefined);
  await closeAll();
});

async function tasksOn(s: Site, ess: Ess): Promise<TaskManager> {
  const t = await TaskManager.open(ess.dir, { context: { flashcopy: ess.fc, pprc: ess.pprc }, kinds: withPprcKinds(defaultOperationKinds()), clock: s.clock });
  managers.push(t);
  return t;
}

/** E1 -> E2 over link l1 (LSS 10 -> 10), one track per virtual second; acks never time out while a test holds the clock. */
async function throttledSite(): Promise<Site> {
  const s = await site({ pprc: { copyBatchTracks: 1, remoteAckTimeoutMs: 3_600_000 } });
  await connect(s);
  await s.e1.pprc.setLinkFault('l1', { bandwidth: TRACK });
  return s;
}

const oosOf = (pprc: PprcManager, volumes: readonly string[]): number => volumes.reduce((n, v) => n + pprc.query(v).oosTracks, 0);

/** Move the virtual clock (only to timers due within a second: link transfers, never ack timeouts) until one more track of `volumes` is copied. */
async function copyOneTrack(clock: VirtualClock, pprc: PprcManager, volumes: readonly string[]): Promise<void> {
  const before = oosOf(pprc, volumes);
  const end = Date.now() + 10_000;
  while (oosOf(pprc, volumes) >= before && volumes.some((v) => pprc.query(v).state === 'DUPLEX_PENDING')) {
    if (Date.now() > end) throw new Error('the copy did not move');
    const next = clock.nextAt();
    if (next !== undefined && next - clock.now() <= 1000) await clock.advanceToNext();
    else await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** Move the virtual clock (link transfers only) until `p` settles. */
async function drive<T>(clock: VirtualClock, p: Promise<T>): Promise<T> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  const end = Date.now() + 10_000;
  while (!done) {
    if (Date.now() > end) throw new Error('did not settle');
    const next = clock.nextAt();
    if (next !== undefined && next - clock.now() <= 1000) await clock.advanceToNext();
    else await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return p;
}

/** `lunrig ess ARGS` in process against a control API serving `tasks`; each -m pause copies one track (and runs `onSleep`). */
async function essCli(s: Site, tasks: TaskManager, volumes: readonly string[], onSleep?: (n: number) => Promise<void>) {
  const server = await createControlServer(s.e1.pool, { port: 0, routes: [taskRoutes(() => tasks)] });
  servers.push(server);
  const host = `127.0.0.1:${server.address.port}`;
  return async (...args: string[]): Promise<{ rc: number; out: string[]; err: string[]; sleeps: number }> => {
    const out: string[] = [];
    const err: string[] = [];
    let sleeps = 0;
    const io: EssIo = {
      out: (line) => out.push(line),
      err: (line) => err.push(line),
      sleep: async () => {
        sleeps++;
        await onSleep?.(sleeps);
        await copyOneTrack(s.clock, s.e1.pprc, volumes);
      },
    };
    const rc = await runEss([args[0]!, '-s', host, ...args.slice(1)], io);
    return { rc, out, err, sleeps };
  };
}

const percents = (out: readonly string[], task: string): number[] =>
  out.flatMap((l) => {
    const m = new RegExp(`^rsQueryComplete: task ${task} ([0-9.]+)% complete$`).exec(l);
    return m ? [Number(m[1])] : [];
  });

describe('PPRC tasks: establish and rsQueryComplete', () => {
  it('PP-37: rsExecuteTask of a COPY_ENTIRE establish task returns once the pairs are established, while they are still DUPLEX_PENDING', async () => {
    const s = await throttledSite();
    const tasks = await tasksOn(s, s.e1);
    const info = await tasks.create({ name: 'pp_est', kind: 'pprc.establish', params: { pairs: [{ primary: 'p', secondary: 's', ess: 'FCA31' }], mode: 'COPY_ENTIRE' } });
    expect(info).toMatchObject({ kind: 'pprc.establish', params: { mode: 'copy-entire' }, summary: 'PPRC COPY_ENTIRE p->FCA31:s' });
    const clockBefore = s.clock.now();
    // The virtual clock does not move: not one track can cross the link before execute resolves.
    const run = await tasks.execute('pp_est');
    expect(run).toMatchObject({ status: 'succeeded', error: null });
    expect(s.clock.now()).toBe(clockBefore);
    expect((run.result as { pairs: Array<{ state: string; oosTracks: number; totalTracks: number }> }).pairs).toMatchObject([{ state: 'DUPLEX_PENDING', oosTracks: 16, totalTracks: 16 }]);
    const primary = s.e1.pprc.query('p');
    expect(primary).toMatchObject({ role: 'source', state: 'DUPLEX_PENDING', suspended: false, oosTracks: 16 });
    expect(primary.ess[1]).toMatch(/^State=source, status=not_suspended, /);
    expect(s.e2.pprc.query('s')).toMatchObject({ role: 'target', suspended: false });
    expect(tasks.progress('pp_est')).toEqual({ running: true, percent: 0, items: [{ name: 'p->FCA31:s', percent: 0, state: 'DUPLEX_PENDING' }] });
    // Through the ESS CLI too: a second establish task, its pair likewise established and pending at rc 0.
    await tasks.create({ name: 'pp_est2', kind: 'pprc.establish', params: { pairs: [{ primary: 'fcb', secondary: 's2', ess: 'FCA31' }], mode: 'copy_entire' } });
    const ess = await essCli(s, tasks, ['p', 'fcb']);
    const cli = await ess('rsExecuteTask', 'pp_est2');
    expect(cli).toMatchObject({ rc: 0, out: ['rsExecuteTask: task pp_est2 completed successfully'] });
    expect(s.e1.pprc.query('fcb')).toMatchObject({ role: 'source', state: 'DUPLEX_PENDING', oosTracks: 16 });
    // The copy then runs to DUPLEX as the clock moves (X3).
    while (s.e1.pprc.query('p').state !== 'DUPLEX' || s.e1.pprc.query('fcb').state !== 'DUPLEX') await copyOneTrack(s.clock, s.e1.pprc, ['p', 'fcb']);
    expect(tasks.progress('pp_est')).toMatchObject({ running: false, percent: 100 });
  });

  it('PP-36: rsQueryComplete -t 50 returns once every pair of the task has 50 % of its tracks copied; -t 100 only once every pair is DUPLEX; 80 before the task ran and once it has completed', async () => {
    const s = await throttledSite();
    const tasks = await tasksOn(s, s.e1);
    const pairs = [
      { primary: 'p', secondary: 's', ess: 'FCA31' },
      { primary: 'fcb', secondary: 's2', ess: 'FCA31' },
    ];
    await tasks.create({ name: 'pp2', kind: 'pprc.establish', params: { pairs, mode: 'COPY_ENTIRE' } });
    const ess = await essCli(s, tasks, ['p', 'fcb']);

    // Not running yet (both simplex): 80 at the first check.
    const before = await ess('rsQueryComplete', 'pp2');
    expect(before.rc).toBe(80);
    expect(before.err).toContain('rsQueryComplete: task pp2 is not running or has already completed');

    expect((await ess('rsExecuteTask', 'pp2')).rc).toBe(0);
    // -t 50: waits, checking every -m minutes, until the slower pair has 50 % too.
    const half = await ess('rsQueryComplete', '-m', '0.001', '-t', '50', 'pp2');
    expect(half.rc).toBe(0);
    const seen = percents(half.out, 'pp2');
    expect(seen[0]).toBe(0);
    expect(seen.slice(0, -1).every((p) => p < 50)).toBe(true);
    expect(seen.at(-1)!).toBeGreaterThanOrEqual(50);
    expect(half.sleeps).toBe(seen.length - 1);
    const atHalf = ['p', 'fcb'].map((v) => s.e1.pprc.query(v).pair!);
    for (const pair of atHalf) expect(pair.percentCopied).toBeGreaterThanOrEqual(50);
    // Returned at the threshold, not at the end: the copy is still running.
    expect(atHalf.some((pair) => pair.state === 'DUPLEX_PENDING')).toBe(true);
    expect(tasks.progress('pp2')).toMatchObject({ running: true, percent: Math.min(...atHalf.map((pair) => pair.percentCopied)) });

    // Default -t 100: only when every pair is DUPLEX.
    const full = await ess('rsQueryComplete', '-m', '0.001', 'pp2');
    expect(full.rc).toBe(0);
    expect(percents(full.out, 'pp2').slice(0, -1).every((p) => p < 100)).toBe(true);
    expect(full.out.at(-1)).toBe('rsQueryComplete: task pp2 100% complete');
    expect(['p', 'fcb'].map((v) => s.e1.pprc.query(v).state)).toEqual(['DUPLEX', 'DUPLEX']);
    expect(s.e1.pprc.outOfSyncTracks('p')).toEqual([]);

    // Already completed: 80.
    const after = await ess('rsQueryComplete', '-m', '0.001', 'pp2');
    expect(after).toMatchObject({ rc: 80, sleeps: 0 });
    expect(after.err).toContain('rsQueryComplete: task pp2 is not running or has already completed');
  });

  it('PP-36: a pair that suspends while rsQueryComplete waits stops the copy short of the threshold: 80, not 0', async () => {
    const s = await throttledSite();
    const tasks = await tasksOn(s, s.e1);
    await tasks.create({ name: 'pp1', kind: 'pprc.establish', params: { pairs: [{ primary: 'p', secondary: 's', ess: 'FCA31' }], mode: 'COPY_ENTIRE' } });
    await tasks.create({ name: 'pp1_sus', kind: 'pprc.suspend', params: { pairs: [{ primary: 'p', secondary: 's', ess: 'FCA31' }] } });
    const ess = await essCli(s, tasks, ['p'], async (n) => {
      // After two checks, the suspend task runs (X4): the copy stops.
      // (The suspend stops the copier, whose track in flight waits on the link: the clock has to move for it.)
      if (n === 3) expect(await drive(s.clock, tasks.execute('pp1_sus'))).toMatchObject({ status: 'succeeded' });
    });
    expect((await ess('rsExecuteTask', 'pp1')).rc).toBe(0);
    const r = await ess('rsQueryComplete', '-m', '0.001', 'pp1');
    expect(r.rc).toBe(80);
    expect(r.sleeps).toBe(3);
    expect(r.err.join('\n')).toMatch(/rsQueryComplete: task pp1 stopped copying at [0-9.]+% \(p->FCA31:s SUSPENDED\)/);
    expect(s.e1.pprc.query('p')).toMatchObject({ state: 'SUSPENDED', suspendReason: 'manual-source' });
    expect(tasks.progress('pp1').running).toBe(false);
  });
});

describe('PPRC tasks: paths, suspend, terminate, freeze, release', () => {
  it('§3.2 path tasks: establish, "do not establish if they exist" (not executed), "force removal of existing paths", remove; several target LSSs in one task', async () => {
    const s = await site();
    await s.e1.pprc.addLink({ id: 'l1', to: 'FCA31' });
    await s.e1.pprc.addLink({ id: 'l2', to: 'FCA31' });
    const tasks = await tasksOn(s, s.e1);
    const path = (targetLss: string, links: string[]) => ({ lss: '10', to: 'FCA31', targetLss, links });
    await tasks.create({ name: 'path1', kind: 'pprc.path', params: { paths: [path('10', ['l1']), path('11', ['l1'])] } });
    await tasks.create({ name: 'path_skip', kind: 'pprc.path', params: { paths: [path('10', ['l2'])], ifExists: 'skip' } });
    await tasks.create({ name: 'path_repl', kind: 'pprc.path', params: { paths: [path('10', ['l2'])], ifExists: 'replace' } });
    await tasks.create({ name: 'path_rm', kind: 'pprc.path', params: { action: 'remove', paths: [{ lss: 0x10, to: 'FCA31', targetLss: 0x11 }] } });
    expect(tasks.show('path1').summary).toBe('PPRC path establish 10->FCA31:10[l1] 10->FCA31:11[l1]');
    expect(tasks.show('path_skip').summary).toBe('PPRC path establish (do not establish if they exist) 10->FCA31:10[l2]');

    expect(await tasks.execute('path1')).toMatchObject({ status: 'succeeded', result: { paths: [{ lss: 0x10, targetLss: 0x10, links: ['l1'], notExecuted: false }, { targetLss: 0x11, notExecuted: false }] } });
    const skipped = await tasks.execute('path_skip');
    expect(skipped).toMatchObject({ status: 'succeeded', result: { paths: [{ links: ['l1'], notExecuted: true }] } });
    expect(await tasks.execute('path_repl')).toMatchObject({ status: 'succeeded', result: { paths: [{ links: ['l2'], notExecuted: false }] } });
    expect(s.e1.pprc.paths().map((p) => [p.targetLss, p.links])).toEqual(
      expect.arrayContaining([
        [0x10, ['l2']],
        [0x11, ['l1']],
      ]),
    );
    expect(await tasks.execute('path_rm')).toMatchObject({ status: 'succeeded', result: { removed: ['10->FCA31:11'] } });
    expect(s.e1.pprc.paths().map((p) => p.targetLss)).toEqual([0x10]);
    // Removing it again: the task fails with the manager's code.
    const again = await tasks.execute('path_rm');
    expect(again.status).toBe('failed');
    expect(again.error?.code).toMatch(/^PPRC_/);
    // A link that does not exist: refused by PPRC, the task fails.
    await tasks.create({ name: 'path_bad', kind: 'pprc.path', params: { paths: [path('11', ['l9'])] } });
    expect(await tasks.execute('path_bad')).toMatchObject({ status: 'failed', error: { code: 'PPRC_LINK_NOT_FOUND' } });
    // A path task has no copy to wait for.
    expect(tasks.progress('path1').running).toBe(false);
  });

  it('§3.8, X4, X8, X9: suspend and terminate tasks scheduled with the source or the target storage server; OUT_OF_SYNC_ONLY resync; NO_COPY', async () => {
    const s = await site();
    await connect(s);
    const e1 = await tasksOn(s, s.e1);
    const e2 = await tasksOn(s, s.e2);
    const pair = { primary: 'p', secondary: 's', ess: 'FCA31' };
    await e1.create({ name: 'est', kind: 'pprc.establish', params: { pairs: [pair], mode: 'NO_COPY', criticalVolume: true } });
    await e1.create({ name: 'resync', kind: 'pprc.establish', params: { pairs: [pair], mode: 'OUT_OF_SYNC_ONLY' } });
    await e1.create({ name: 'sus', kind: 'pprc.suspend', params: { pairs: [pair], from: 'source' } });
    await e2.create({ name: 'sus_t', kind: 'pprc.suspend', params: { pairs: [pair], from: 'target' } });
    await e1.create({ name: 'term_t_e1', kind: 'pprc.terminate', params: { pairs: [pair], from: 'target' } });
    await e2.create({ name: 'term_t', kind: 'pprc.terminate', params: { pairs: [pair], from: 'target' } });
    await e1.create({ name: 'term', kind: 'pprc.terminate', params: { pairs: [pair] } });
    expect(e1.show('term').params).toEqual({ pairs: [pair], from: 'source' });
    expect(e2.show('term_t').summary).toBe('PPRC terminate (scheduled with the target storage server) p->FCA31:s');

    // X13: OUT_OF_SYNC_ONLY on simplex volumes is refused.
    expect(await e1.execute('resync')).toMatchObject({ status: 'failed', error: { code: 'PPRC_INVALID_COPY_MODE' } });
    // X2: NO_COPY goes straight to DUPLEX; nothing to wait for.
    expect(await e1.execute('est')).toMatchObject({ status: 'succeeded', result: { pairs: [{ state: 'DUPLEX', criticalVolume: true, oosTracks: 0 }] } });
    expect(e1.progress('est')).toEqual({ running: false, percent: 100, items: [{ name: 'p->FCA31:s', percent: 100, state: 'DUPLEX' }] });

    // X4 from the source, then resync (X7), then X4 from the target (E2's task, the secondary's server).
    expect(await e1.execute('sus')).toMatchObject({ status: 'succeeded' });
    expect(s.e1.pprc.query('p')).toMatchObject({ state: 'SUSPENDED', suspendReason: 'manual-source' });
    expect(s.e1.pprc.query('p').ess[1]).toMatch(/^State=source, status=suspended, /);
    expect(await e1.execute('resync')).toMatchObject({ status: 'succeeded', result: { pairs: [{ state: 'DUPLEX' }] } });
    expect(await e2.execute('sus_t')).toMatchObject({ status: 'succeeded' });
    expect(s.e2.pprc.query('s')).toMatchObject({ role: 'target', suspended: true });
    expect(s.e1.pprc.query('p')).toMatchObject({ state: 'SUSPENDED', suspendReason: 'manual-target' });
    // E2's task sees the pair from the secondary's side.
    expect(e2.progress('sus_t')).toMatchObject({ running: false, items: [{ name: 'p->FCA31:s', state: 'SUSPENDED' }] });

    // Scheduled with the target storage server, but run on the source's: refused, nothing changes.
    expect(await e1.execute('term_t_e1')).toMatchObject({ status: 'failed', error: { code: 'INVALID_ARGUMENT' } });
    expect(s.e2.pprc.query('s').role).toBe('target');
    // X9: from the target only the secondary becomes simplex; the primary keeps its pair.
    expect(await e2.execute('term_t')).toMatchObject({ status: 'succeeded' });
    expect(s.e2.pprc.query('s').role).toBe('simplex');
    expect(s.e1.pprc.query('p')).toMatchObject({ role: 'source', state: 'SUSPENDED' });
    // X8 from the source: the primary is simplex too.
    expect(await e1.execute('term')).toMatchObject({ status: 'succeeded' });
    expect(s.e1.pprc.query('p').role).toBe('simplex');
    expect(e1.progress('est')).toEqual({ running: false, percent: 100, items: [{ name: 'p->FCA31:s', percent: 100, state: 'SIMPLEX' }] });
    // §3.11: terminate of a simplex volume is PPRC_NOT_IN_PAIR.
    expect(await e1.execute('term')).toMatchObject({ status: 'failed', error: { code: 'PPRC_NOT_IN_PAIR' } });
  });

  it('§3.9: freeze and release tasks over LSSs; a multi-pair task tries every pair and fails with the first refusal', async () => {
    const s = await site();
    await connect(s);
    const tasks = await tasksOn(s, s.e1);
    await tasks.create({
      name: 'est2',
      kind: 'pprc.establish',
      params: {
        pairs: [
          { primary: 'p', secondary: 's', ess: 'FCA31' },
          { primary: 'p2', secondary: 'u', ess: 'FCA31' }, // LSS 11 -> 11: no path
          { primary: 'fcb', secondary: 's2', ess: 'FCA31' },
        ],
        mode: 'NO_COPY',
      },
    });
    const run = await tasks.execute('est2');
    expect(run).toMatchObject({ status: 'failed', error: { code: 'PPRC_NO_PATH' } });
    expect(run.error!.message).toMatch(/^1 of 3 failed: p2->FCA31:u \(PPRC_NO_PATH: .*\); done: p->FCA31:s fcb->FCA31:s2$/);
    expect(s.e1.pprc.list().map((p) => [p.primary.volume, p.state])).toEqual([
      ['p', 'DUPLEX'],
      ['fcb', 'DUPLEX'],
    ]);

    await tasks.create({ name: 'frz', kind: 'pprc.freeze', params: { lss: ['10', 0x10] } });
    await tasks.create({ name: 'rel', kind: 'pprc.release', params: { lss: ['0x10'] } });
    expect(tasks.show('frz')).toMatchObject({ params: { lss: [0x10] }, summary: 'PPRC freeze LSS 10' });
    const frozen = await tasks.execute('frz');
    expect(frozen).toMatchObject({ status: 'succeeded' });
    expect((frozen.result as { frozen: unknown[] }).frozen).toHaveLength(2);
    for (const v of ['p', 'fcb']) expect(s.e1.pprc.query(v)).toMatchObject({ state: 'SUSPENDED', suspendReason: 'freeze', writeInhibited: false });
    expect(tasks.progress('frz')).toMatchObject({ running: false, items: [{ state: 'SUSPENDED' }, { state: 'SUSPENDED' }] });
    expect(await tasks.execute('rel')).toMatchObject({ status: 'succeeded', result: { released: [{}, {}] } });
  });

  it('§4.2: parameters are checked when a task is saved; without a PPRC service a run fails NOT_SUPPORTED', async () => {
    const s = await site();
    const tasks = await tasksOn(s, s.e1);
    expect(tasks.kinds.names()).toEqual(['flashcopy.establish', 'flashcopy.withdraw', 'pprc.establish', 'pprc.freeze', 'pprc.path', 'pprc.release', 'pprc.suspend', 'pprc.terminate']);
    const pairs = [{ primary: 'p', secondary: 's' }];
    await expectCode(tasks.create({ name: 'a', kind: 'pprc.establish', params: { pairs } }), 'INVALID_ARGUMENT'); // no mode
    await expectCode(tasks.create({ name: 'a', kind: 'pprc.establish', params: { pairs, mode: 'COPY' } }), 'INVALID_ARGUMENT');
    await expectCode(tasks.create({ name: 'a', kind: 'pprc.establish', params: { pairs: [], mode: 'NO_COPY' } }), 'INVALID_ARGUMENT');
    await expectCode(tasks.create({ name: 'a', kind: 'pprc.establish', params: { pairs: [...pairs, { primary: 'p', secondary: 't' }], mode: 'NO_COPY' } }), 'INVALID_ARGUMENT');
    await expectCode(tasks.create({ name: 'a', kind: 'pprc.establish', params: { pairs, mode: 'NO_COPY', wait: true } }), 'INVALID_ARGUMENT');
    await expectCode(tasks.create({ name: 'a', kind: 'pprc.establish', params: { pairs: [{ primary: 'p', secondary: 's', ess: 'bad' }], mode: 'NO_COPY' } }), 'INVALID_ARGUMENT');
    await expectCode(tasks.create({ name: 'a', kind: 'pprc.suspend', params: { pairs, from: 'primary' } }), 'INVALID_ARGUMENT');
    await expectCode(tasks.create({ name: 'a', kind: 'pprc.path', params: { paths: [{ lss: '10', to: 'FCA31', targetLss: '10' }] } }), 'INVALID_ARGUMENT'); // no links
    await expectCode(tasks.create({ name: 'a', kind: 'pprc.path', params: { action: 'remove', ifExists: 'skip', paths: [{ lss: '10', to: 'FCA31', targetLss: '10' }] } }), 'INVALID_ARGUMENT');
    await expectCode(tasks.create({ name: 'a', kind: 'pprc.freeze', params: { lss: ['20'] } }), 'LSS_NOT_FOUND');
    await expectCode(tasks.create({ name: 'a', kind: 'pprc.freeze', params: { lss: [] } }), 'INVALID_ARGUMENT');
    expect(tasks.list()).toEqual([]);

    const bare = await TaskManager.open(s.e1.dir, { context: { flashcopy: s.e1.fc }, kinds: withPprcKinds(defaultOperationKinds()), clock: s.clock });
    managers.push(bare);
    await bare.create({ name: 'n', kind: 'pprc.establish', params: { pairs, mode: 'no-copy' } });
    expect(await bare.execute('n')).toMatchObject({ status: 'failed', error: { code: 'NOT_SUPPORTED' } });
  });
});
