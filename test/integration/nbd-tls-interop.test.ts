/**
 * Real TLS clients against lunrig's NBD server: libnbd (nbdinfo, nbdcopy;
 * gnutls) with `nbds+unix://` URIs and `tls-certificates=` / `tls-psk-file=`,
 * and qemu (qemu-img, qemu-io; gnutls) with `tls-creds-x509` /
 * `tls-creds-psk` objects. Credentials are made by openssl at test time in
 * the layouts those tools read (test/unit/nbd/tls-fixtures.ts).
 *
 * qemu over a unix socket has no host name to check the server certificate
 * against: it needs `tls-hostname=` (here 'localhost', the certificate's name).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TlsSessionInfo } from '../../src/nbd/tls-peer.js';
import { MemoryVolume } from '../../src/volume/memory-volume.js';
import { makeTlsFixtures, missingOpenssl, type TlsFixtures } from '../unit/nbd/tls-fixtures.js';
import { MiB, missing, pattern, run, runOk, sha256, sha256File, startInteropServer, type InteropServer } from './nbd-harness.js';

const noOpenssl = missingOpenssl();
const skipInfo = noOpenssl ?? missing('nbdinfo');
const skipCopy = noOpenssl ?? missing('nbdcopy');
const skipQemu = noOpenssl ?? missing('qemu-img', 'qemu-io');
for (const s of new Set([skipInfo, skipCopy, skipQemu])) if (s) console.warn(`nbd-tls-interop: ${s}`);

let f: TlsFixtures;
/** FORCEDTLS; client certificates required; PSK accepted too. */
let req: InteropServer;
/** SELECTIVETLS; server certificate only; PSK accepted too. */
let opt: InteropServer;
let disk: MemoryVolume;
const sessions: TlsSessionInfo[] = [];
const closes: string[] = [];

beforeAll(async () => {
  if (noOpenssl) return;
  f = await makeTlsFixtures();
  disk = new MemoryVolume({ size: 32 * MiB, identity: { name: 'disk0' } });
  const psk = { [f.pskIdentity]: f.pskKey.toString('hex') };
  req = await startInteropServer([{ name: 'disk0', volume: disk }, { name: 'copy', volume: new MemoryVolume({ size: 16 * MiB }) }], {
    tls: { mode: 'require', x509: { cert: f.pem.serverCert, key: f.pem.serverKey, ca: f.pem.ca, requestClientCert: true }, psk },
  });
  opt = await startInteropServer([{ name: 'disk0', volume: disk }], { tls: { mode: 'optional', x509: { cert: f.pem.serverCert, key: f.pem.serverKey }, psk } });
  for (const s of [req, opt]) {
    s.server.on('tls', (i) => sessions.push(i.session));
    s.server.on('disconnect', (i) => closes.push(i.reason));
  }
});
afterAll(async () => {
  await req?.close();
  await opt?.close();
  await f?.cleanup();
});

/** Run `fn` and return the TLS sessions and close reasons the servers saw meanwhile. */
async function observe<T>(fn: () => Promise<T>): Promise<{ result: T; sessions: TlsSessionInfo[]; closes: string[] }> {
  const s0 = sessions.length;
  const c0 = closes.length;
  const result = await fn();
  await new Promise((r) => setTimeout(r, 50)); // let the server see the client's close
  return { result, sessions: sessions.slice(s0), closes: closes.slice(c0) };
}

const x509Uri = (s: InteropServer, dir: string, exp = 'disk0'): string => `nbds+unix:///${exp}?socket=${s.path}&tls-certificates=${dir}`;
const pskUri = (s: InteropServer, file: string, user = 'alice', exp = 'disk0'): string => `nbds+unix://${user}@/${exp}?socket=${s.path}&tls-psk-file=${file}`;

describe.skipIf(skipInfo)(`nbdinfo (libnbd) over TLS${skipInfo ? ` (${skipInfo})` : ''}`, () => {
  it('X.509 with a client certificate (tls-certificates=DIR): TLS on, peer named by the certificate CN', async () => {
    const { result, sessions } = await observe(() => runOk('nbdinfo', ['--json', x509Uri(req, f.clientDir)]));
    expect(JSON.parse(result.stdout)).toMatchObject({ TLS: true, structured: true, exports: [{ 'export-name': 'disk0', 'export-size': 32 * MiB }] });
    expect(sessions[0]!.peer).toMatchObject({ kind: 'x509', name: 'host-a', subject: 'O=lunrig, CN=host-a' });
  });

  it('PSK (alice@ + tls-psk-file=FILE): TLS on, peer named by the PSK identity', async () => {
    const { result, sessions } = await observe(() => runOk('nbdinfo', ['--json', pskUri(req, f.pskFile)]));
    expect(JSON.parse(result.stdout)).toMatchObject({ TLS: true });
    expect(sessions[0]!.peer).toEqual({ kind: 'psk', name: 'alice' });
  });

  it('--list over TLS', async () => {
    const { stdout } = await runOk('nbdinfo', ['--list', '--json', `nbds+unix://alice@/?socket=${req.path}&tls-psk-file=${f.pskFile}`]);
    expect(JSON.parse(stdout).exports.map((e: { 'export-name': string }) => e['export-name'])).toEqual(['disk0', 'copy']);
  });

  it('a wrong pre-shared key fails the handshake; the server goes on serving', async () => {
    const { result, closes } = await observe(() => run('nbdinfo', ['--json', pskUri(req, f.wrongPskFile)]));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/gnutls_handshake|TLS/);
    expect(closes.some((r) => /TLS handshake failed/.test(r))).toBe(true);
    await runOk('nbdinfo', ['--size', pskUri(req, f.pskFile)]);
  });

  it('no client certificate, or one from another CA, is refused when the server requires one', async () => {
    for (const dir of [f.clientNoCertDir, f.rogueClientDir]) {
      const { result, closes } = await observe(() => run('nbdinfo', ['--json', x509Uri(req, dir)]));
      expect(result.code).not.toBe(0);
      expect(closes.some((r) => /TLS handshake failed: peer did not return a certificate/.test(r))).toBe(true);
    }
  });

  it('a plaintext nbdinfo against a TLS-required server is refused (NBD_REP_ERR_TLS_REQD), and nothing is served', async () => {
    const { result, sessions } = await observe(() => run('nbdinfo', ['--json', req.uri('disk0')]));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/server replied with error to opt_go request/);
    expect(sessions).toHaveLength(0);
    const list = await run('nbdinfo', ['--list', `nbd+unix:///?socket=${req.path}`]);
    expect(list.code).not.toBe(0);
    expect(list.stdout).not.toMatch(/disk0/);
  });

  it("'optional' server: plaintext nbdinfo works without TLS; with a CA only it gets TLS as an anonymous peer", async () => {
    const plain = JSON.parse((await runOk('nbdinfo', ['--json', opt.uri('disk0')])).stdout);
    expect(plain).toMatchObject({ TLS: false });
    const { result, sessions } = await observe(() => runOk('nbdinfo', ['--json', x509Uri(opt, f.clientNoCertDir)]));
    expect(JSON.parse(result.stdout)).toMatchObject({ TLS: true });
    expect(sessions[0]!.peer).toEqual({ kind: 'anonymous' });
  });
});

describe.skipIf(skipCopy)(`nbdcopy (libnbd) over TLS${skipCopy ? ` (${skipCopy})` : ''}`, () => {
  it('copies 16 MiB in and back out over several PSK connections, byte for byte', async () => {
    const image = Buffer.alloc(16 * MiB);
    pattern(6 * MiB, 31).copy(image, MiB);
    pattern(3 * MiB + 999, 32).copy(image, 10 * MiB);
    const src = join(req.dir, 'tls-in.img');
    await writeFile(src, image);
    const { sessions } = await observe(() => runOk('nbdcopy', [src, pskUri(req, f.pskFile, 'alice', 'copy')]));
    expect(sessions.length).toBeGreaterThanOrEqual(2); // multi-conn, every connection over TLS
    const out = join(req.dir, 'tls-out.img');
    await runOk('nbdcopy', [pskUri(req, f.pskFile, 'alice', 'copy'), out]);
    expect(await sha256File(out)).toBe(sha256(image));
  });
});

describe.skipIf(skipQemu)(`qemu over TLS${skipQemu ? ` (${skipQemu})` : ''}`, () => {
  const x509Object = (): string => `tls-creds-x509,id=tls0,endpoint=client,dir=${f.clientDir}`;
  const pskObject = (): string => `tls-creds-psk,id=tls0,endpoint=client,dir=${f.pskDir},username=alice`;
  const imageOpts = (s: InteropServer, extra = ''): string => `driver=nbd,path=${s.path},export=disk0,tls-creds=tls0${extra}`;

  it('qemu-img info with tls-creds-x509 (client certificate, tls-hostname=localhost)', async () => {
    const { result, sessions } = await observe(() => runOk('qemu-img', ['info', '--object', x509Object(), '--image-opts', imageOpts(req, ',tls-hostname=localhost')]));
    expect(result.stdout).toMatch(/virtual size: 32 MiB/);
    expect(sessions[0]!.peer).toMatchObject({ kind: 'x509', name: 'host-a' });
  });

  it('qemu-io with tls-creds-psk writes and reads back a pattern', async () => {
    await disk.trim(0, disk.size);
    const { result, sessions } = await observe(() =>
      runOk('qemu-io', ['--object', pskObject(), '--image-opts', imageOpts(req), '-c', 'write -P 0xab 1M 1M', '-c', 'read -P 0xab 1M 1M', '-c', 'flush']),
    );
    expect(result.stdout).not.toMatch(/Pattern verification failed/);
    expect(sessions[0]!.peer).toEqual({ kind: 'psk', name: 'alice' });
    expect(Buffer.from(await disk.read(MiB, MiB)).every((b) => b === 0xab)).toBe(true);
  });

  it('qemu-img without TLS credentials against a TLS-required server is told TLS is required', async () => {
    const r = await run('qemu-img', ['info', req.uri('disk0')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/TLS negotiation required/);
    expect(r.stderr).toMatch(/server reported: TLS is required/);
  });
});
