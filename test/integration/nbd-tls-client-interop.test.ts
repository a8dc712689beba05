/**
 * lunrig's NbdClient over TLS against gnutls servers: nbdkit (`--tls=require`
 * with `--tls-psk` or `--tls-certificates` + `--tls-verify-peer`) and
 * qemu-nbd (`tls-creds-x509` / `tls-creds-psk`, endpoint=server). PPRC and
 * multipath will reach other arrays this way.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isLunrigError } from '../../src/errors.js';
import { NbdClient } from '../../src/nbd/client.js';
import type { NbdClientTlsOptions } from '../../src/nbd/tls-client.js';
import { makeTlsFixtures, missingOpenssl, type TlsFixtures } from '../unit/nbd/tls-fixtures.js';
import { MiB, missing, pattern, startDaemon, type Daemon } from './nbd-harness.js';

const noOpenssl = missingOpenssl();
const skipKit = noOpenssl ?? missing('nbdkit');
const skipQemu = noOpenssl ?? missing('qemu-nbd');
for (const s of new Set([skipKit, skipQemu])) if (s) console.warn(`nbd-tls-client-interop: ${s}`);

let f: TlsFixtures;
let sockN = 0;
const daemons: Daemon[] = [];
const clients: NbdClient[] = [];

beforeAll(async () => {
  if (!noOpenssl) f = await makeTlsFixtures();
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => c.destroy());
  for (const d of daemons.splice(0)) await d.stop();
});
afterAll(async () => {
  await f?.cleanup();
});

async function daemon(cmd: string, args: (sock: string) => string[]): Promise<string> {
  const sock = join(f.dir, `srv${sockN++}.sock`);
  daemons.push(await startDaemon(cmd, args(sock), sock));
  return sock;
}

async function connect(path: string, tls: NbdClientTlsOptions, exportName = ''): Promise<NbdClient> {
  const c = await NbdClient.connect({ path }, { exportName, tls });
  clients.push(c);
  return c;
}

async function roundTrip(c: NbdClient): Promise<void> {
  const data = pattern(2 * MiB + 77, 9);
  await c.write(4096, data, { fua: true });
  expect(Buffer.from(await c.read(4096, data.length)).equals(data)).toBe(true);
  await c.flush();
}

const psk = (): NbdClientTlsOptions => ({ mode: 'require', psk: { identity: f.pskIdentity, key: f.pskKey } });
const x509 = (): NbdClientTlsOptions => ({ mode: 'require', x509: { ca: f.pem.ca, cert: f.pem.clientCert, key: f.pem.clientKey } });

describe.skipIf(skipKit)(`NbdClient over TLS against nbdkit${skipKit ? ` (${skipKit})` : ''}`, () => {
  it('PSK (--tls-psk=FILE)', async () => {
    const sock = await daemon('nbdkit', (s) => ['-f', '-U', s, '--tls=require', `--tls-psk=${f.pskFile}`, 'memory', '16M']);
    const c = await connect(sock, psk());
    expect(c.tls).toMatchObject({ authenticatedBy: 'psk' });
    await roundTrip(c);
  });

  it('X.509 with a verified client certificate (--tls-certificates=DIR --tls-verify-peer)', async () => {
    const sock = await daemon('nbdkit', (s) => ['-f', '-U', s, '--tls=require', `--tls-certificates=${f.serverDir}`, '--tls-verify-peer', 'memory', '16M']);
    const c = await connect(sock, x509());
    expect(c.tls).toMatchObject({ authenticatedBy: 'x509' });
    await roundTrip(c);
  });

  it('a wrong key fails with UNREACHABLE; plaintext against --tls=require is refused; optional TLS against --tls=off stays plaintext', async () => {
    const sock = await daemon('nbdkit', (s) => ['-f', '-U', s, '--tls=require', `--tls-psk=${f.pskFile}`, 'memory', '16M']);
    await expect(connect(sock, { mode: 'require', psk: { identity: 'alice', key: Buffer.alloc(32, 1) } })).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'UNREACHABLE'));
    await expect(NbdClient.connect({ path: sock }, { exportName: '' })).rejects.toThrow(/TLS_REQD/);
    const off = await daemon('nbdkit', (s) => ['-f', '-U', s, '--tls=off', 'memory', '16M']);
    const c = await connect(off, { ...psk(), mode: 'optional' }); // nbdkit declines with NBD_REP_ERR_POLICY
    expect(c.tls).toBeUndefined();
    await expect(connect(off, psk())).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'NOT_SUPPORTED') && /NBD_REP_ERR_POLICY/.test((e as Error).message));
  });
});

describe.skipIf(skipQemu)(`NbdClient over TLS against qemu-nbd${skipQemu ? ` (${skipQemu})` : ''}`, () => {
  async function qemuNbd(object: string): Promise<string> {
    const image = join(f.dir, `q${sockN}.img`);
    await writeFile(image, Buffer.alloc(16 * MiB));
    return daemon('qemu-nbd', (s) => ['--object', object, '--tls-creds', 'tls0', '-k', s, '-f', 'raw', '-x', 'disk', '-t', image]);
  }

  it('X.509, qemu verifying the client certificate (verify-peer=on)', async () => {
    const sock = await qemuNbd(`tls-creds-x509,id=tls0,endpoint=server,dir=${f.serverDir},verify-peer=on`);
    await roundTrip(await connect(sock, x509(), 'disk'));
  });

  it('PSK (tls-creds-psk dir= with keys.psk)', async () => {
    const sock = await qemuNbd(`tls-creds-psk,id=tls0,endpoint=server,dir=${f.pskDir}`);
    await roundTrip(await connect(sock, psk(), 'disk'));
  });
});
