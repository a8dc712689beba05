/**
 * The primary ESS fails (spec/copy-services.md §3.6, X6, PP-30, PP-31): two
 * `lunrig serve` processes, a DUPLEX pair whose secondary is on the second;
 * the primary is kill -9ed right after acknowledged writes. Its link
 * connections drop; past the heartbeat timeout the secondary reports
 * State=target, status=suspended and stays unreadable; a terminate scheduled
 * on the target ESS makes it simplex and readable with every acknowledged
 * write; the restarted primary reports source / suspended, not simplex.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlClient } from '../../src/control/client.js';
import { PprcClient } from '../../src/control/pprc-client.js';
import { cliJson, startServe, stopAllServes, type ServeProcess } from '../helpers/serve-process.js';
import { killChildren, missing, run, runOk } from './nbd-harness.js';

const skip = missing('qemu-io');
if (skip) console.warn(`pprc-primary-failure: ${skip}`);

let primary: ServeProcess;
let secondary: ServeProcess;

type Query = { role: string; state: string; suspended: boolean; suspendReason?: string; ess: string[] };
const pprc = <T>(s: ServeProcess, args: string[]) => cliJson<T>(s, ['pprc', ...args]);

beforeAll(async () => {
  if (skip) return;
  [secondary, primary] = await Promise.all([startServe({ args: ['--serial', 'SECD3', '--pprc-heartbeat', '1000'] }), startServe({ args: ['--serial', 'PRIM3'] })]);
}, 90_000);

afterAll(async () => {
  killChildren();
  await stopAllServes();
});

describe.skipIf(skip)(`primary ESS failure with a remote secondary${skip ? ` (${skip})` : ''}`, () => {
  it('X6/PP-30/PP-31: kill -9 of the primary suspends the secondary (heartbeat); terminate from the target makes it readable with every acknowledged write', { timeout: 60_000 }, async () => {
    await cliJson(primary, ['lun', 'create', 'v', '--size', '16M', '--lss', '10']);
    await cliJson(secondary, ['lun', 'create', 'vr', '--size', '16M', '--lss', '10']);
    await pprc(primary, ['ess', 'add', secondary.url, `127.0.0.1:${secondary.tcp!.port}`]);
    await pprc(primary, ['link', 'add', '--to', 'SECD3', '--id', 'l1']);
    await pprc(primary, ['path', 'establish', '10', 'SECD3', '10', '--links', 'l1']);
    expect(await pprc<Query>(primary, ['establish', 'v', 'vr', '--ess', 'SECD3', '--wait'])).toMatchObject({ state: 'DUPLEX' });

    // Acknowledged writes (W1: on the secondary before qemu-io hears back), then the primary dies at once.
    await runOk('qemu-io', ['-f', 'raw', '-c', 'write -P 0xab 0 64k', '-c', 'write -P 0xcd 5M 4k', '-c', 'write -P 0xef 16380k 4k', primary.uri('v')]);
    await primary.stop('SIGKILL');

    const seen = await waitForQuery(secondary, 'vr', (q) => q.suspended, 8_000);
    expect(seen).toMatchObject({ role: 'target', state: 'SUSPENDED' });
    expect(seen.ess[1]).toMatch(/^State=target, status=suspended/);
    const status = await secondary.cli(['pprc', 'query', 'vr']);
    // Whichever noticed first: the core's heartbeat (no ping) or the link watcher (no link connection).
    expect(status.stdout).toMatch(/suspended:\s+yes \((primary-lost|no link connection from the primary)/);
    const locked = await run('qemu-io', ['-f', 'raw', '-c', 'read 0 4k', secondary.uri('vr')]);
    expect(locked.stdout + locked.stderr).toMatch(/Operation not permitted/);

    expect(await pprc<Query>(secondary, ['terminate', 'vr', '--from', 'target'])).toMatchObject({ role: 'simplex' });
    const read = await runOk('qemu-io', ['-f', 'raw', '-c', 'read -P 0xab 0 64k', '-c', 'read -P 0xcd 5M 4k', '-c', 'read -P 0xef 16380k 4k', '-c', 'read -P 0 64k 4k', secondary.uri('vr')]);
    expect(read.stdout).not.toMatch(/Pattern verification failed/);

    // PP-31: the primary comes back source / suspended, not simplex.
    primary = await startServe({ dataDir: primary.dataDir });
    expect(await pprc<Query>(primary, ['query', 'v'])).toMatchObject({ role: 'source', suspended: true });
    // The remote ESS and the links were persisted on the primary.
    expect((await pprc<{ remotes: Array<{ serial: string }> }>(primary, ['ess', 'list'])).remotes.map((r) => r.serial)).toEqual(['SECD3']);
    expect((await pprc<{ links: Array<{ id: string }> }>(primary, ['link', 'list'])).links.map((l) => l.id)).toEqual(['l1']);
  });
});

async function waitForQuery(s: ServeProcess, volume: string, done: (q: Query) => boolean, ms: number): Promise<Query> {
  const end = Date.now() + ms;
  for (;;) {
    const q = (await new PprcClient(new ControlClient(s.url)).query(volume)) as unknown as Query;
    if (done(q)) return q;
    if (Date.now() > end) throw new Error(`${volume}: condition not met, last ${JSON.stringify(q)}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}
