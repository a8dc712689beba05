/**
 * `lunrig serve --nbd HOST:PORT --nbd-socket PATH`: the NBD server as one of
 * serve's services. It prints the URIs of every LUN, defaults to loopback,
 * can be turned off, and on SIGTERM lets in-flight requests finish before the
 * pool is flushed and closed (spec/nbd.md §2.4 FLUSH/DISC, §2.5 ESHUTDOWN).
 */
import { existsSync } from 'node:fs';
import net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { isLunrigError } from '../../src/errors.js';
import { NbdClient } from '../../src/nbd/client.js';
import { cliJson, runLunrig, startServe, startServeHuman, stopAllServes } from '../helpers/serve-process.js';
import { tempDirs } from '../helpers/temp-dir.js';
import { MiB, pattern } from './nbd-harness.js';

const temp = tempDirs('lunrig-serve-nbd-');
const clients: NbdClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await stopAllServes();
  temp.cleanup();
});

afterAll(async () => {
  await stopAllServes();
});

describe('lunrig serve: the NBD service', () => {
  it('--json: the services list NBD on TCP and the unix socket; every LUN is an export with both URIs', async () => {
    const s = await startServe();
    const nbd = s.summary.services.filter((x) => x.name === 'nbd').map((x) => x.url);
    expect(nbd).toEqual([`nbd://127.0.0.1:${s.tcp!.port}/`, `nbd+unix:///?socket=${s.socket}`]);
    expect(s.summary.exports.map((e) => e.name)).toEqual(['lun0', 'lun1', 'lun2', 'lun3']);
    for (const e of s.summary.exports) {
      expect(e).toEqual({ name: e.name, size: 1024 * MiB, readOnly: false, uris: [`nbd://127.0.0.1:${s.tcp!.port}/${e.name}`, `nbd+unix:///${e.name}?socket=${s.socket}`] });
    }
  });

  it('prints the NBD URI of every LUN for people', async () => {
    const s = await startServeHuman();
    const out = s.stdout();
    const port = /nbd\s+nbd:\/\/127\.0\.0\.1:(\d+)\//.exec(out)?.[1];
    expect(port).toBeDefined();
    expect(out).toMatch(/nbd\s+nbd\+unix:\/\/\/\?socket=\/\S+\/nbd\.sock/);
    expect(out).toMatch(/NBD exports \(attach with nbd-client -N NAME, qemu, nbdinfo, nbdfuse\):/);
    expect(out).toMatch(new RegExp(`^  lun2\\s+1G\\s+rw\\s+nbd://127\\.0\\.0\\.1:${port}/lun2\\s+nbd\\+unix:///lun2\\?socket=\\S+$`, 'm'));
    expect(await s.stop('SIGINT')).toEqual({ code: 0, signal: null });
  });

  it('--nbd none: no TCP listener; with --nbd-socket the exports are reachable on the socket only, without it NBD is off', async () => {
    const unixOnly = await startServe({ args: ['--nbd', 'none'] });
    expect(unixOnly.tcp).toBeUndefined();
    expect(unixOnly.summary.exports[0]!.uris).toEqual([unixOnly.uri('lun0')]);
    const c = await NbdClient.connect({ path: unixOnly.socket }, { exportName: 'lun0' });
    clients.push(c);
    expect(c.size).toBe(1024 * MiB);

    const off = await startServeHuman({ args: ['--nbd', 'none'], socket: false });
    expect(off.stdout()).toMatch(/^NBD is off \(--nbd none and no --nbd-socket\)\.$/m);
    expect(off.stdout()).not.toMatch(/nbd:\/\//);
  });

  it('an NBD port in use: exit 1 with one line (BUSY), and the pool is released', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const dir = temp.make();
      const run = await runLunrig(['serve', '--data', dir, '--control', '127.0.0.1:0', '--nbd', `127.0.0.1:${port}`, '--io', 'fs']);
      expect(run.code).toBe(1);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(new RegExp(`^lunrig: BUSY: cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE.*\\n$`));
      // Nothing held: the same pool serves at once elsewhere.
      const s = await startServe({ dataDir: dir });
      expect(s.summary.luns).toHaveLength(4);
    } finally {
      blocker.close();
    }
  });

  it('--nbd takes HOST:PORT or none, and defaults to loopback (127.0.0.1:10809)', async () => {
    const bad = await runLunrig(['serve', '--nbd', 'localhost']);
    expect(bad).toEqual({ code: 2, stdout: '', stderr: expect.stringMatching(/^lunrig: USAGE: .*expected HOST:PORT, e\.g\. 127\.0\.0\.1:10809 or none \(see lunrig --help\)\n$/) });
    const help = await runLunrig(['serve', '--help']);
    expect(help.stdout).toMatch(/--nbd <host:port\|none>[\s\S]*default: 127\.0\.0\.1:10809/);
    expect(help.stdout).toMatch(/--nbd-socket <path>/);
  });

  it('§2.5 SIGTERM while writes are in flight: acknowledged writes are all there after a restart; the socket is removed', async () => {
    const s = await startServe({ args: ['--io', 'worker'] });
    await cliJson(s, ['lun', 'create', 'busy', '--size', '64M']);
    const c = await NbdClient.connect({ path: s.socket }, { exportName: 'busy' });
    clients.push(c);
    const blocks = Array.from({ length: 128 }, (_, i) => pattern(256 * 1024, 1000 + i));
    // No FUA, no flush: only the clean shutdown makes these durable.
    let signalled = false;
    let ackedAfterSignal = 0;
    const writes = blocks.map((b, i) => c.write(i * 256 * 1024, b).then(() => void (signalled && ackedAfterSignal++)));
    await writes[0]; // the stream is flowing; most writes are still to come
    signalled = true;
    const stopped = s.stop('SIGTERM');
    const results = await Promise.allSettled(writes);
    console.log(`[serve-nbd-serve] ${results.filter((r) => r.status === 'fulfilled').length} of ${blocks.length} writes acknowledged, ${ackedAfterSignal} of them after SIGTERM`);
    expect(await stopped).toEqual({ code: 0, signal: null });
    expect(existsSync(s.socket)).toBe(false);
    for (const r of results) if (r.status === 'rejected') expect(isLunrigError(r.reason, 'CLOSED') || isLunrigError(r.reason, 'UNREACHABLE')).toBe(true);
    const acked = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(acked.length).toBeGreaterThan(0);

    const again = await startServe({ dataDir: s.dataDir });
    const r = await NbdClient.connect({ path: again.socket }, { exportName: 'busy' });
    clients.push(r);
    for (const i of acked) expect(Buffer.from(await r.read(i * 256 * 1024, 256 * 1024)).equals(blocks[i]!), `block ${i}`).toBe(true);
  });
});
