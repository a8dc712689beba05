/**
 * PPRC link connections over NBD TLS (spec/copy-services.md §3.2; spec/nbd.md
 * TLS): a remote ESS registered with X.509 or PSK credential files reaches a
 * secondary whose NBD server requires TLS (client certificates verified);
 * registered without credentials, its link cannot open.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createControlServer, type ControlServer } from '../../../src/control/server.js';
import { pprcRoutes } from '../../../src/control/routes-pprc.js';
import type { PprcCoreApi } from '../../../src/copy/pprc/remote/core-api.js';
import { PprcLinkExports } from '../../../src/copy/pprc/remote/link-exports.js';
import { RemoteEssRegistry } from '../../../src/copy/pprc/remote/remote-registry.js';
import type { RemoteSecondaryEss } from '../../../src/copy/pprc/remote/remote-secondary.js';
import { SecondarySide } from '../../../src/copy/pprc/secondary-side.js';
import { PoolExports } from '../../../src/nbd/pool-exports.js';
import { NbdServer } from '../../../src/nbd/server.js';
import { Pool } from '../../../src/store/pool.js';
import { tempDirs } from '../../helpers/temp-dir.js';
import { makeTlsFixtures, missingOpenssl, type TlsFixtures } from '../nbd/tls-fixtures.js';

const MiB = 1024 * 1024;
const skip = missingOpenssl();
const temp = tempDirs('lunrig-pprc-tls-');
let fx: TlsFixtures;
let pool: Pool;
let links: PprcLinkExports;
let control: ControlServer;
let nbd: NbdServer;
let port: number;

beforeAll(async () => {
  if (skip) return;
  fx = await makeTlsFixtures();
  pool = await Pool.open({ dir: temp.make(), serial: 'SECTL', engine: 'fs' });
  await pool.createLun({ name: 'sec', size: 4 * MiB, lss: 0x10 });
  await mkdir(path.join(pool.dir, 'pprc'), { recursive: true });
  const side = await SecondarySide.open(pool, { isPrimary: () => false, changed: () => undefined });
  const ess = side.asEss();
  const manager = { asSecondary: () => ess } as unknown as PprcCoreApi;
  links = new PprcLinkExports({ secondary: () => ess });
  const remotes = await RemoteEssRegistry.open(pool.dir, () => ({ addEss: () => undefined }));
  control = await createControlServer(pool, { host: '127.0.0.1', port: 0, routes: [pprcRoutes({ manager: () => manager, remotes: () => remotes, links: () => links, serial: () => 'SECTL' })] });
  const base = new PoolExports(pool);
  nbd = new NbdServer({
    exports: { get: (n) => links.get(n) ?? base.get(n), list: () => base.list() },
    tls: { mode: 'require', x509: { cert: fx.pem.serverCert, key: fx.pem.serverKey, ca: fx.pem.ca, requestClientCert: true }, psk: new Map([[fx.pskIdentity, fx.pskKey]]) },
  });
  port = (await nbd.listen({ host: '127.0.0.1', port: 0 })).tcp!.port;
  links.start(() => nbd.stats());
  await ess.bind('sec', { pairId: 'p1', primary: { serial: 'PRIM1', lss: 0x10, volume: 'db', volumeId: '000PRIM1' } });
});

afterAll(async () => {
  if (skip) return;
  await links.close();
  await nbd.close();
  await control.close();
  await pool.close();
  await fx.cleanup();
  temp.cleanup();
});

async function registered(tls?: Parameters<RemoteEssRegistry['add']>[0]['tls']): Promise<{ registry: RemoteEssRegistry; ess: RemoteSecondaryEss }> {
  const registry = await RemoteEssRegistry.open(temp.make(), () => ({ addEss: () => undefined }));
  const info = await registry.add({ controlUrl: control.url, nbd: `127.0.0.1:${port}`, ...(tls && { tls }) });
  return { registry, ess: registry.get(info.serial)! };
}

describe.skipIf(skip)(`PPRC links over NBD TLS${skip ? ` (${skip})` : ''}`, () => {
  it('X.509 with a client certificate: the link writes the secondary', async () => {
    const { registry, ess } = await registered({ certificates: fx.clientDir });
    const ch = await ess.channel('sec', 'p1', 0);
    await ch.write(0, Buffer.alloc(4096, 0x11));
    expect(Buffer.from(await ch.read(0, 4096)).equals(Buffer.alloc(4096, 0x11))).toBe(true);
    expect(registry.list()[0]).toMatchObject({ serial: 'SECTL', tls: { certificates: fx.clientDir }, openLinks: 1 });
    await registry.close();
  });

  it('PSK: the link writes the secondary', async () => {
    const { registry, ess } = await registered({ psk: fx.pskFile, pskIdentity: fx.pskIdentity });
    const ch = await ess.channel('sec', 'p1', 1);
    await ch.write(4096, Buffer.alloc(4096, 0x22));
    expect(Buffer.from(await ch.read(4096, 4096))[0]).toBe(0x22);
    await registry.close();
  });

  it('without credentials (or with the wrong key) the link cannot open', async () => {
    const plain = await registered();
    await expect(plain.ess.channel('sec', 'p1', 0)).rejects.toThrow(/TLS/);
    await plain.registry.close();
    const wrong = await registered({ psk: fx.wrongPskFile });
    await expect(wrong.ess.channel('sec', 'p1', 0)).rejects.toThrow();
    await wrong.registry.close();
  });
});
