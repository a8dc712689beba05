/**
 * Hosts, LUN masking, reservations and target ports through `lunrig serve`
 * (built dist/) and its CLI, with real NBD clients: nbdinfo opens
 * `HOST/LUN` export names (nbd+unix:///host1/mp0?socket=...), a masked
 * client is refused, an extra port follows `port fault`/`port clear`, a
 * persistent reservation refuses another host's writes (qemu-io gets EPERM)
 * on every port, and hosts plus the APTPL reservation survive a restart.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cliJson, requireBuild, startServe, stopAllServes } from '../helpers/serve-process.js';
import { tempDirs } from '../helpers/temp-dir.js';
import { killChildren, missing, run } from './nbd-harness.js';

const skip = missing('nbdinfo', 'qemu-io');
if (skip) console.warn(`multipath-serve-cli: ${skip}`);
const dirs = tempDirs('lunrig-mp-cli-');

afterAll(async () => {
  killChildren();
  await stopAllServes();
  dirs.cleanup();
});

const nbdinfoSize = async (uri: string): Promise<{ ok: boolean; out: string }> => {
  const r = await run('nbdinfo', ['--size', uri], { timeoutMs: 15_000 });
  return { ok: r.code === 0, out: (r.stdout + r.stderr).trim() };
};

describe.skipIf(skip)(`lunrig serve: hosts, masking, reservations, ports${skip ? ` (${skip})` : ''}`, () => {
  it('masking by HOST/LUN export names, an extra port with faults, PR refusing another host on every port, APTPL across a restart', async () => {
    requireBuild();
    const tmp = dirs.make();
    let s = await startServe({ args: ['--nbd', 'none'] });
    await cliJson(s, ['lun', 'create', 'mp0', '--size', '8M']);
    // No hosts yet: open as before.
    expect((await nbdinfoSize(s.uri('mp0'))).out).toBe(String(8 * 1024 * 1024));

    expect(await cliJson(s, ['host', 'create', 'host1', '--lun', 'mp0'])).toMatchObject({ name: 'host1', initiators: [{ kind: 'nbd-name', name: 'host1' }], luns: ['mp0'] });
    await cliJson(s, ['host', 'create', 'host2', '--lun', 'mp0']);
    expect((await nbdinfoSize(s.uri('host1/mp0'))).ok).toBe(true);
    expect((await nbdinfoSize(s.uri('mp0'))).ok).toBe(false);
    expect((await nbdinfoSize(s.uri('host1/lun0'))).ok).toBe(false);
    const list = await run('nbdinfo', ['--list', '--json', s.uri('')], { timeoutMs: 15_000 });
    expect(JSON.parse(list.stdout).exports).toEqual([]);

    const p1 = path.join(tmp, 'p1.sock');
    const port = await cliJson<{ name: string; listening: boolean }>(s, ['port', 'add', 'p1', '--socket', p1]);
    expect(port).toMatchObject({ name: 'p1', listening: true });
    const viaP1 = `nbd+unix:///host1/mp0?socket=${p1}`;
    expect((await nbdinfoSize(viaP1)).ok).toBe(true);
    expect(await cliJson(s, ['port', 'fault', 'p1', 'down'])).toMatchObject({ state: 'down', listening: false });
    expect((await nbdinfoSize(viaP1)).ok).toBe(false);
    expect(await cliJson(s, ['port', 'clear', 'p1'])).toMatchObject({ state: 'up', listening: true });
    expect((await nbdinfoSize(viaP1)).ok).toBe(true);

    // host1 takes a persistent Write Exclusive - Registrants Only reservation through the main listener.
    await cliJson(s, ['reservation', 'register', 'mp0', '--host', 'host1', '--service-key', '0xa1', '--aptpl', '--all-target-ports']);
    const st = await cliJson<{ generation: number; reservation: { type: string } }>(s, ['reservation', 'pr-reserve', 'mp0', '--host', 'host1', '--key', '0xa1', '--type', 'write_exclusive_registrants_only']);
    expect(st).toMatchObject({ generation: 1, reservation: { type: 'write_exclusive_registrants_only' } });
    const qemuWrite = async (uri: string): Promise<string> => {
      const r = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 64k', uri], { timeoutMs: 20_000 });
      return (r.stdout + r.stderr).trim();
    };
    for (const target of [s.uri('host2/mp0'), `nbd+unix:///host2/mp0?socket=${p1}`]) {
      expect(await qemuWrite(target), target).toMatch(/write failed: Operation not permitted/);
    }
    // host1 (registered with ALL_TG_PT) writes through both ports.
    for (const target of [s.uri('host1/mp0'), viaP1]) {
      expect(await qemuWrite(target), target).toMatch(/wrote 65536\/65536 bytes/);
    }
    const human = await s.cli(['reservation', 'show', 'mp0']);
    expect(human.stdout).toMatch(/PR generation:\s+1/);
    expect(human.stdout).toMatch(/write_exclusive_registrants_only key 00000000000000a1 holder host1@\*/);

    // Restart on the same pool: hosts and the APTPL reservation are still there.
    const dataDir = s.dataDir;
    await s.stop();
    s = await startServe({ dataDir, args: ['--nbd', 'none'] });
    const hosts = await cliJson<{ hosts: { name: string }[] }>(s, ['host', 'list']);
    expect(hosts.hosts.map((h) => h.name)).toEqual(['host1', 'host2']);
    expect(await cliJson(s, ['reservation', 'show', 'mp0'])).toMatchObject({ generation: 1, aptpl: true, reservation: { key: '00000000000000a1' } });
    expect(await qemuWrite(s.uri('host2/mp0'))).toMatch(/write failed: Operation not permitted/);
    await s.stop();
  }, 90_000);
});
