/**
 * STARTTLS in the option haggling (proto.md "TLS support"): FORCEDTLS
 * refusals before TLS, NOTLS and SELECTIVETLS answers, and the hostile
 * cases (plaintext pipelined behind STARTTLS, garbage or silence where the
 * TLS handshake should be) that must end only their own connection. PSK-only
 * servers: no certificates needed.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { isLunrigError } from '../../../src/errors.js';
import { NbdClient } from '../../../src/nbd/client.js';
import * as C from '../../../src/nbd/constants.js';
import { encodeOption } from '../../../src/nbd/handshake-codec.js';
import { encodeGoRequest, encodeMetaContextRequest } from '../../../src/nbd/option-data-codec.js';
import type { NbdServerOptions } from '../../../src/nbd/server-options.js';
import { encodeRequestHeader } from '../../../src/nbd/request-codec.js';
import { SocketReader } from '../../../src/nbd/socket-reader.js';
import { MiB, pattern, RawConnection, sleep, startServer, waitFor, type TestServer } from './harness.js';
import { nextDisconnect, RawSession } from './tls-harness.js';

const KEY = randomBytes(32);
const psk = { identity: 'alice', key: KEY };
let servers: TestServer[] = [];
const raws: { destroy(): void }[] = [];

async function server(mode: 'off' | 'optional' | 'require', extra: Partial<NbdServerOptions> = {}): Promise<TestServer> {
  const ts = await startServer({ server: { tls: { mode, psk: { alice: KEY } }, ...extra } });
  servers.push(ts);
  return ts;
}
async function raw(ts: TestServer, greet = true): Promise<RawConnection> {
  const c = await RawConnection.open(ts.path);
  raws.push(c);
  if (greet) await c.greet();
  return c;
}
/** A well-behaved TLS client still gets served. */
async function tlsClientWorks(ts: TestServer): Promise<void> {
  const c = await NbdClient.connect({ path: ts.path }, { exportName: 'disk0', tls: { mode: 'require', psk } });
  await c.write(0, Buffer.from('after the storm'));
  expect(Buffer.from(await c.read(0, 15)).toString()).toBe('after the storm');
  await c.close();
}

afterEach(async () => {
  for (const r of raws.splice(0)) r.destroy();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

describe("FORCEDTLS ('require') before TLS", () => {
  it('answers every option but STARTTLS and ABORT with NBD_REP_ERR_TLS_REQD, including unknown and oversized ones', async () => {
    const ts = await server('require', { limits: { maxOptionLength: 1024 } });
    const c = await raw(ts);
    const cases: [number, Buffer][] = [
      [C.NBD_OPT_LIST, Buffer.alloc(0)],
      [C.NBD_OPT_STRUCTURED_REPLY, Buffer.alloc(0)],
      [C.NBD_OPT_INFO, encodeGoRequest({ exportName: 'disk0', infoRequests: [] })],
      [C.NBD_OPT_GO, encodeGoRequest({ exportName: 'disk0', infoRequests: [] })],
      [C.NBD_OPT_LIST_META_CONTEXT, encodeMetaContextRequest({ exportName: 'disk0', queries: [] })],
      [C.NBD_OPT_EXTENDED_HEADERS, Buffer.alloc(0)],
      [0x1234, Buffer.alloc(10)],
      [C.NBD_OPT_GO, Buffer.alloc(4096)], // over maxOptionLength: drained, still TLS_REQD
    ];
    for (const [opt, data] of cases) {
      const replies = await c.option(opt, data);
      expect(replies).toHaveLength(1);
      expect(replies[0]).toMatchObject({ option: opt, type: C.NBD_REP_ERR_TLS_REQD });
      expect(replies[0]!.data.toString()).toMatch(/STARTTLS/);
    }
    const [abort] = await c.option(C.NBD_OPT_ABORT);
    expect(abort!.type).toBe(C.NBD_REP_ACK);
    await c.expectClosed();
  });

  it('NBD_OPT_EXPORT_NAME before TLS cannot be refused, so the server disconnects', async () => {
    const ts = await server('require');
    const reason = nextDisconnect(ts.server);
    const c = await raw(ts);
    c.write(encodeOption(C.NBD_OPT_EXPORT_NAME, Buffer.from('disk0')));
    await c.expectClosed();
    expect(await reason).toMatch(/EXPORT_NAME before STARTTLS/);
  });

  it('a client without FIXED_NEWSTYLE cannot do TLS and is dropped at once', async () => {
    const ts = await server('require');
    const c = await raw(ts, false);
    await c.greet(C.NBD_FLAG_C_NO_ZEROES);
    await c.expectClosed();
  });

  it('our plaintext client is refused with a clear error (TLS_REQD), for connect and list', async () => {
    const ts = await server('require');
    const err = await NbdClient.connect({ path: ts.path }, { exportName: 'disk0' }).catch((e: unknown) => e);
    expect(isLunrigError(err, 'NOT_SUPPORTED')).toBe(true);
    expect(String((err as Error).message)).toMatch(/NBD_REP_ERR_TLS_REQD.*requires TLS/);
    await expect(NbdClient.listExports({ path: ts.path })).rejects.toThrow(/NBD_REP_ERR_TLS_REQD/);
    await tlsClientWorks(ts);
  });

  it('STARTTLS with data is NBD_REP_ERR_INVALID and the session goes on (still plaintext, still refused)', async () => {
    const ts = await server('require', { limits: { maxOptionLength: 16 } });
    const c = await raw(ts);
    expect((await c.option(C.NBD_OPT_STARTTLS, Buffer.from('x')))[0]!.type).toBe(C.NBD_REP_ERR_INVALID);
    expect((await c.option(C.NBD_OPT_STARTTLS, Buffer.alloc(64)))[0]!.type).toBe(C.NBD_REP_ERR_INVALID); // drained as too big
    expect((await c.option(C.NBD_OPT_LIST))[0]!.type).toBe(C.NBD_REP_ERR_TLS_REQD);
  });
});

describe("NOTLS ('off') and SELECTIVETLS ('optional')", () => {
  it("'off' answers STARTTLS with NBD_REP_ERR_UNSUP and never TLS_REQD", async () => {
    const ts = await server('off');
    const c = await raw(ts);
    expect((await c.option(C.NBD_OPT_STARTTLS))[0]!.type).toBe(C.NBD_REP_ERR_UNSUP);
    expect((await c.option(C.NBD_OPT_LIST)).at(-1)!.type).toBe(C.NBD_REP_ACK);
  });

  it("'off': a client requiring TLS gets NOT_SUPPORTED; one merely preferring it goes on in plaintext", async () => {
    const ts = await server('off');
    await expect(NbdClient.connect({ path: ts.path }, { exportName: 'disk0', tls: { mode: 'require', psk } })).rejects.toSatisfy(
      (e: unknown) => isLunrigError(e, 'NOT_SUPPORTED') && /refused STARTTLS \(NBD_REP_ERR_UNSUP/.test((e as Error).message),
    );
    const c = await NbdClient.connect({ path: ts.path }, { exportName: 'disk0', tls: { mode: 'optional', psk } });
    expect(c.tls).toBeUndefined();
    await c.close();
  });

  it("'optional' serves plaintext clients as before, and TLS to those who ask", async () => {
    const ts = await server('optional');
    const plain = await NbdClient.connect({ path: ts.path }, { exportName: 'disk0' });
    expect(plain.tls).toBeUndefined();
    expect(ts.server.stats()[0]!.tls).toBeUndefined();
    await tlsClientWorks(ts);
    await plain.write(0, Buffer.from('plain'));
    await plain.close();
  });

  it("'optional' with a client lacking FIXED_NEWSTYLE: NOTLS for that session (STARTTLS -> ERR_UNSUP)", async () => {
    const ts = await server('optional');
    const c = await raw(ts, false);
    await c.greet(C.NBD_FLAG_C_NO_ZEROES);
    expect((await c.option(C.NBD_OPT_STARTTLS))[0]!.type).toBe(C.NBD_REP_ERR_UNSUP);
  });
});

describe('hostile STARTTLS sessions end only themselves', () => {
  it('plaintext pipelined behind STARTTLS (command injection) is refused: connection dropped, never fed to TLS', async () => {
    const ts = await server('require');
    const reason = nextDisconnect(ts.server);
    const c = await raw(ts);
    c.write(Buffer.concat([encodeOption(C.NBD_OPT_STARTTLS), encodeOption(C.NBD_OPT_LIST)]));
    await c.expectClosed();
    expect(await reason).toMatch(/data sent after NBD_OPT_STARTTLS/);
    await tlsClientWorks(ts);
  });

  it('garbage instead of a TLS handshake ends that connection; other clients keep working', async () => {
    const ts = await server('require');
    const reason = nextDisconnect(ts.server);
    const c = await raw(ts);
    expect((await c.option(C.NBD_OPT_STARTTLS))[0]!.type).toBe(C.NBD_REP_ACK);
    c.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    c.write(randomBytes(4096));
    await c.expectClosed();
    expect(await reason).toMatch(/TLS handshake failed/);
    await tlsClientWorks(ts);
    expect(ts.server.connectionCount).toBe(0);
  });

  it('a TLS record header announcing a huge record, then silence, is cut by the handshake timeout', async () => {
    const ts = await server('require', { limits: { handshakeTimeoutMs: 300 } });
    const reason = nextDisconnect(ts.server);
    const c = await raw(ts);
    await c.option(C.NBD_OPT_STARTTLS);
    c.write(Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01])); // handshake record of 16 KiB, 1 byte of it
    await c.expectClosed(3000);
    expect(await reason).toBe('handshake timeout');
  });

  it('a client hanging up mid-handshake is noticed at once (no wait for a timeout)', async () => {
    const ts = await server('require');
    const reason = nextDisconnect(ts.server);
    const c = await raw(ts);
    await c.option(C.NBD_OPT_STARTTLS);
    const t0 = Date.now();
    c.socket.end();
    expect(await reason).toMatch(/TLS handshake failed/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('server close() while a TLS handshake is pending ends it promptly', async () => {
    const ts = await server('require');
    const c = await raw(ts);
    await c.option(C.NBD_OPT_STARTTLS);
    await waitFor(() => ts.server.stats()[0]?.phase === 'tls', 2000, 'tls phase');
    const t0 = Date.now();
    await ts.server.close();
    expect(Date.now() - t0).toBeLessThan(2000);
    await c.expectClosed();
  });

  it('a wrong or unknown pre-shared key fails that handshake only, the same way (identities cannot be probed)', async () => {
    const ts = await server('require');
    const clientErrors: string[] = [];
    for (const [bad, logged] of [
      [{ identity: 'alice', key: randomBytes(32) }, /binder does not verify.*\(PSK identity 'alice'\)/],
      [{ identity: 'mallory', key: KEY }, /binder does not verify.*\(unknown PSK identity 'mallory'\)/],
    ] as const) {
      const reason = nextDisconnect(ts.server);
      const err = await NbdClient.connect({ path: ts.path }, { exportName: 'disk0', tls: { mode: 'require', psk: bad } }).catch((e: unknown) => e);
      expect(isLunrigError(err, 'UNREACHABLE')).toBe(true);
      expect((err as Error).message).toMatch(/TLS handshake with the NBD server failed/);
      clientErrors.push((err as Error).message);
      expect(await reason).toMatch(logged);
    }
    expect(clientErrors[0]).toBe(clientErrors[1]);
    await tlsClientWorks(ts);
  });
});

describe('over TLS (PSK)', () => {
  it('the peer is the PSK identity; STARTTLS again is NBD_REP_ERR_INVALID; TLS_REQD is never sent once TLS is up', async () => {
    const ts = await server('require');
    const seen = new Promise<unknown>((resolve) => ts.server.once('tls', resolve));
    const s = await RawSession.open(ts.path);
    raws.push(s);
    await s.startTls({ pskCallback: () => ({ identity: 'alice', psk: KEY }), ciphers: 'TLS_AES_128_GCM_SHA256' });
    expect(await seen).toMatchObject({ session: { protocol: 'TLSv1.3', peer: { kind: 'psk', name: 'alice' } } });
    expect(ts.server.stats()[0]!.tls!.peer).toEqual({ kind: 'psk', name: 'alice' });
    const [again] = await s.option(C.NBD_OPT_STARTTLS);
    expect(again).toMatchObject({ option: C.NBD_OPT_STARTTLS, type: C.NBD_REP_ERR_INVALID });
    expect((await s.option(0x1234))[0]!.type).toBe(C.NBD_REP_ERR_UNSUP);
    expect((await s.option(C.NBD_OPT_LIST)).at(-1)!.type).toBe(C.NBD_REP_ACK);
  });

  it('TLS 1.2 PSK cipher suites work too (gnutls peers limited to 1.2)', async () => {
    const ts = await server('require');
    const seen = new Promise<{ session: { protocol: string; cipher: string } }>((resolve) => ts.server.once('tls', resolve));
    const s = await RawSession.open(ts.path);
    raws.push(s);
    await s.startTls({ maxVersion: 'TLSv1.2', ciphers: 'PSK-AES256-GCM-SHA384', pskCallback: () => ({ identity: 'alice', psk: KEY }) });
    const { session } = await seen;
    expect(session).toMatchObject({ protocol: 'TLSv1.2', cipher: 'PSK-AES256-GCM-SHA384', peer: { kind: 'psk', name: 'alice' } });
  });

  it('TLS 1.1 is refused (proto.md: older versions SHOULD NOT be on by default)', async () => {
    const ts = await server('require');
    const reason = nextDisconnect(ts.server);
    const s = await RawSession.open(ts.path);
    raws.push(s);
    await expect(
      s.startTls({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'PSK-AES256-CBC-SHA:@SECLEVEL=0', pskCallback: () => ({ identity: 'alice', psk: KEY }) }),
    ).rejects.toThrow();
    expect(await reason).toMatch(/TLS handshake failed: .*(unsupported protocol|version)/i);
    await tlsClientWorks(ts);
  });

  it('a client that does not read its replies is stopped at maxReplyBuffer (writableLength of the TLS socket), then served in full', async () => {
    const limit = 4 * MiB;
    const ts = await server('require', { limits: { maxReplyBuffer: limit, maxOutstandingBytes: limit } });
    await ts.volume.write(0, pattern(MiB, 3));
    const s = await RawSession.open(ts.path);
    raws.push(s);
    await s.startTls({ pskCallback: () => ({ identity: 'alice', psk: KEY }) });
    const go = await s.option(C.NBD_OPT_GO, encodeGoRequest({ exportName: 'disk0', infoRequests: [] }));
    expect(go.at(-1)!.type).toBe(C.NBD_REP_ACK);
    s.reader.detach();
    s.socket.pause();
    const n = 48;
    for (let i = 0; i < n; i++) s.socket.write(encodeRequestHeader({ flags: 0, type: C.NBD_CMD_READ, cookie: BigInt(i), offset: 0, length: MiB }));
    await sleep(300);
    const held = ts.server.stats()[0]!;
    expect(held.requests).toBeLessThan(n); // stopped reading requests
    expect(ts.server.peakBufferedBytes).toBeLessThan(2 * limit + 2 * MiB);
    const reader = new SocketReader(s.socket);
    s.socket.resume();
    const want = pattern(MiB, 3);
    for (let i = 0; i < n; i++) {
      const h = await reader.read(C.NBD_SIMPLE_REPLY_SIZE);
      expect(h.readUInt32BE(4)).toBe(0);
      expect((await reader.read(MiB)).equals(want)).toBe(true);
    }
    expect(ts.server.stats()[0]!.requests).toBe(n);
  });

  it('STARTTLS resets negotiated state: structured replies asked for in plaintext are gone after it', async () => {
    const ts = await server('optional');
    const s = await RawSession.open(ts.path);
    raws.push(s);
    expect((await s.option(C.NBD_OPT_STRUCTURED_REPLY))[0]!.type).toBe(C.NBD_REP_ACK);
    await s.startTls({ pskCallback: () => ({ identity: 'alice', psk: KEY }) });
    const [r] = await s.option(C.NBD_OPT_SET_META_CONTEXT, encodeMetaContextRequest({ exportName: 'disk0', queries: ['base:allocation'] }));
    expect(r!.type).toBe(C.NBD_REP_ERR_INVALID);
    expect(r!.data.toString()).toMatch(/STRUCTURED_REPLY first/);
  });
});
