/**
 * Our client and our server over TLS with X.509 certificates (generated at
 * test time by openssl): server-only authentication, required client
 * certificates, every way a certificate can fail, and the transmission
 * phase — data, concurrency and backpressure — running on the TLS socket.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isLunrigError } from '../../../src/errors.js';
import { NbdClient, type NbdClientOptions } from '../../../src/nbd/client.js';
import type { ExportEntry } from '../../../src/nbd/export-provider.js';
import type { NbdClientTlsOptions } from '../../../src/nbd/tls-client.js';
import type { X509ServerCredentials } from '../../../src/nbd/tls-options.js';
import type { TlsSessionInfo } from '../../../src/nbd/tls-peer.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';
import { GatedVolume, MiB, pattern, sleep, startServer, waitFor, type TestServer } from './harness.js';
import { makeTlsFixtures, missingOpenssl, type TlsFixtures } from './tls-fixtures.js';
import { nextDisconnect } from './tls-harness.js';

const skip = missingOpenssl();
if (skip) console.warn(`tls-x509: ${skip}`);

describe.skipIf(skip)(`NBD over TLS with X.509${skip ? ` (${skip})` : ''}`, () => {
  let f: TlsFixtures;
  let servers: TestServer[] = [];
  const clients: NbdClient[] = [];
  const pskKey = randomBytes(32);

  beforeAll(async () => {
    f = await makeTlsFixtures();
  });
  afterAll(async () => {
    await f?.cleanup();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
    await Promise.all(servers.map((s) => s.close()));
    servers = [];
  });

  const x509 = (o: Partial<X509ServerCredentials> = {}): X509ServerCredentials => ({ cert: f.pem.serverCert, key: f.pem.serverKey, ca: f.pem.ca, ...o });
  async function server(o: { mode?: 'optional' | 'require'; x509?: Partial<X509ServerCredentials>; psk?: boolean; limits?: object; exports?: ExportEntry[] } = {}): Promise<TestServer> {
    const ts = await startServer({
      exports: o.exports,
      server: { tls: { mode: o.mode ?? 'require', x509: x509(o.x509), ...(o.psk ? { psk: { alice: pskKey } } : {}) }, limits: o.limits ?? {} },
    });
    servers.push(ts);
    return ts;
  }
  const withCert = (): NbdClientTlsOptions => ({ mode: 'require', x509: { ca: f.pem.ca, cert: f.pem.clientCert, key: f.pem.clientKey } });
  const noCert = (): NbdClientTlsOptions => ({ mode: 'require', x509: { ca: f.pem.ca } });
  async function connect(ts: TestServer, tls: NbdClientTlsOptions | undefined, o: Partial<NbdClientOptions> = {}): Promise<NbdClient> {
    const c = await NbdClient.connect({ path: ts.path }, { exportName: 'disk0', ...o, ...(tls ? { tls } : {}) });
    clients.push(c);
    return c;
  }
  const tlsEvent = (ts: TestServer): Promise<TlsSessionInfo> => new Promise((resolve) => ts.server.once('tls', (i) => resolve(i.session)));
  async function stillServes(ts: TestServer): Promise<void> {
    const c = await connect(ts, withCert());
    await c.write(4096, Buffer.from('ok'));
    expect(Buffer.from(await c.read(4096, 2)).toString()).toBe('ok');
  }

  describe('server certificate only', () => {
    it('the client verifies the server; the peer is anonymous; data round-trips', async () => {
      const ts = await server();
      const seen = tlsEvent(ts);
      const c = await connect(ts, noCert());
      expect(c.tls).toMatchObject({ protocol: 'TLSv1.3', authenticatedBy: 'x509' });
      expect((await seen).peer).toEqual({ kind: 'anonymous' });
      expect(ts.server.stats()[0]).toMatchObject({ phase: 'transmission', tls: { peer: { kind: 'anonymous' } } });
      const data = pattern(3 * MiB + 17, 5);
      await c.write(MiB - 5, data);
      expect(Buffer.from(await c.read(MiB - 5, data.length)).equals(data)).toBe(true);
      expect(c.structuredReplies).toBe(true);
      expect(c.metaContexts.get('base:allocation')).toBe(1);
    });

    it('a server certificate from another CA, or for another name, is refused by the client', async () => {
      const ts = await server();
      await expect(connect(ts, { mode: 'require', x509: { ca: f.pem.rogueCa } })).rejects.toSatisfy(
        (e: unknown) => isLunrigError(e, 'UNREACHABLE') && /TLS handshake with the NBD server failed/.test((e as Error).message),
      );
      await expect(connect(ts, { mode: 'require', x509: { ca: f.pem.ca, servername: 'nbd.example.org' } })).rejects.toThrow(/altnames|does not match/i);
      await stillServes(ts);
    });

    it('over TCP the server certificate is checked against the host connected to (IP or DNS name)', async () => {
      const ts = await server();
      const { tcp } = await ts.server.listen({ host: '127.0.0.1', port: 0 });
      for (const host of ['127.0.0.1', 'localhost']) {
        const c = await NbdClient.connect({ host, port: tcp!.port }, { exportName: 'disk0', tls: noCert() });
        clients.push(c);
        expect(c.tls?.protocol).toBe('TLSv1.3');
      }
      const wrongName = { mode: 'require' as const, x509: { ca: f.pem.ca, servername: 'lunrig.invalid' } };
      await expect(NbdClient.connect({ host: '127.0.0.1', port: tcp!.port }, { exportName: 'disk0', tls: wrongName })).rejects.toSatisfy((e: unknown) =>
        isLunrigError(e, 'UNREACHABLE'),
      );
    });

    it('listExports works over TLS', async () => {
      const ts = await server();
      const list = await NbdClient.listExports({ path: ts.path }, { tls: noCert() });
      expect(list.map((e) => e.name)).toEqual(['disk0']);
    });

    it("'optional': plaintext and TLS clients side by side", async () => {
      const ts = await server({ mode: 'optional' });
      const plain = await connect(ts, undefined);
      const secure = await connect(ts, noCert());
      await Promise.all([plain.write(0, Buffer.alloc(MiB, 1)), secure.write(MiB, Buffer.alloc(MiB, 2))]);
      expect(Buffer.from(await secure.read(0, 1))[0]).toBe(1);
      expect(Buffer.from(await plain.read(MiB, 1))[0]).toBe(2);
      expect(ts.server.stats().map((s) => s.tls === undefined).sort()).toEqual([false, true]);
    });
  });

  describe('client certificates required (requestClientCert)', () => {
    it('a verified client certificate names the peer: CN, subject, issuer, fingerprint', async () => {
      const ts = await server({ x509: { requestClientCert: true } });
      const seen = tlsEvent(ts);
      await connect(ts, withCert());
      const peer = (await seen).peer;
      expect(peer).toMatchObject({ kind: 'x509', name: 'host-a', subject: 'O=lunrig, CN=host-a', issuer: 'CN=lunrig test CA', serialNumber: '03' });
      expect(peer.kind === 'x509' && peer.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    });

    it('no client certificate, or one from another CA, fails the handshake; others are unaffected', async () => {
      const ts = await server({ x509: { requestClientCert: true } });
      for (const tls of [noCert(), { mode: 'require' as const, x509: { ca: f.pem.ca, cert: f.pem.rogueCert, key: f.pem.rogueKey } }]) {
        const reason = nextDisconnect(ts.server);
        await expect(connect(ts, tls)).rejects.toSatisfy((e: unknown) => isLunrigError(e, 'UNREACHABLE'));
        expect(await reason).toMatch(/TLS handshake failed/);
      }
      await stillServes(ts);
    });

    it('rejectUnauthorized: false lets an unverified client in, as anonymous (never named by an unverified certificate)', async () => {
      const ts = await server({ x509: { requestClientCert: true, rejectUnauthorized: false } });
      const seen = tlsEvent(ts);
      await connect(ts, { mode: 'require', x509: { ca: f.pem.ca, cert: f.pem.rogueCert, key: f.pem.rogueKey } });
      expect((await seen).peer).toEqual({ kind: 'anonymous' });
    });

    it('with PSK configured too, a PSK client gets in without a certificate and is named by its identity', async () => {
      const ts = await server({ x509: { requestClientCert: true }, psk: true });
      const seen = tlsEvent(ts);
      await connect(ts, { mode: 'require', psk: { identity: 'alice', key: pskKey.toString('hex') } });
      expect((await seen).peer).toEqual({ kind: 'psk', name: 'alice' });
      const seen2 = tlsEvent(ts);
      await connect(ts, withCert());
      expect((await seen2).peer).toMatchObject({ kind: 'x509', name: 'host-a' });
    });
  });

  describe('transmission over TLS: concurrency and backpressure as on a plain socket', () => {
    it('hundreds of mixed requests in flight, replies out of order, all correct', async () => {
      const ts = await server();
      const c = await connect(ts, noCert(), { maxInFlight: 512 });
      const n = 300;
      await Promise.all(Array.from({ length: n }, (_, i) => c.write(i * 8192, pattern(8192, i + 1))));
      const reads = await Promise.all(Array.from({ length: n }, (_, i) => c.read(i * 8192, 8192)));
      reads.forEach((r, i) => expect(Buffer.from(r).equals(pattern(8192, i + 1))).toBe(true));
      const big = await Promise.all(Array.from({ length: 8 }, (_, i) => c.read(i * MiB, MiB)));
      expect(big.reduce((n, b) => n + b.length, 0)).toBe(8 * MiB);
    });

    it('stops reading past maxInFlight and resumes as requests complete', async () => {
      const pending: (() => void)[] = [];
      const vol = new GatedVolume(new MemoryVolume({ size: MiB }), () => new Promise<void>((resolve) => pending.push(resolve)));
      const ts = await server({ exports: [{ name: 'disk0', volume: vol }], limits: { maxInFlight: 4 } });
      const c = await connect(ts, noCert(), { maxInFlight: 64 });
      let done = false;
      const all = Promise.all(Array.from({ length: 10 }, (_, i) => c.read(i * 4096, 4096))).then(() => (done = true));
      await waitFor(() => ts.server.stats()[0]?.inFlight === 4, 3000, '4 requests in flight');
      await sleep(50);
      expect(ts.server.stats()[0]!.inFlight).toBe(4); // and no more were read
      expect(pending).toHaveLength(4);
      while (!done) {
        for (const release of pending.splice(0)) release();
        await sleep(5);
      }
      await all;
    });

    it('bounds the bytes a connection holds: outstanding write payloads stay under the limit', async () => {
      let open!: () => void;
      const opened = new Promise<void>((resolve) => (open = resolve));
      const vol = new GatedVolume(new MemoryVolume({ size: 64 * MiB }), (op) => (op === 'write' ? opened : Promise.resolve()));
      const limit = 4 * MiB;
      const ts = await server({ exports: [{ name: 'disk0', volume: vol }], limits: { maxOutstandingBytes: limit } });
      const c = await connect(ts, noCert(), { maxInFlight: 256 });
      const writes = Promise.all(Array.from({ length: 32 }, (_, i) => c.write(i * MiB, Buffer.alloc(MiB, i))));
      await waitFor(() => ts.server.stats()[0]?.inFlight === 4, 3000, '4 writes in flight');
      await sleep(50);
      const s = ts.server.stats()[0]!;
      expect(s.outstandingBytes).toBeLessThanOrEqual(limit);
      expect(s.inFlight).toBe(4);
      open();
      await writes;
      expect(Buffer.from(await c.read(31 * MiB, 1))[0]).toBe(31);
      // TLS records are at most 16 KiB, so one socket read adds even less than on a plain socket.
      expect(ts.server.stats()[0]!.peakBufferedBytes).toBeLessThan(limit + MiB);
    });
  });
});
