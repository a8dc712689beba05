import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as C from '../../../src/nbd/constants.js';
import { encodeOption } from '../../../src/nbd/handshake-codec.js';
import { decodeInfoItem, decodeMetaContextReply, decodeServerReply, encodeGoRequest, encodeMetaContextRequest } from '../../../src/nbd/option-data-codec.js';
import { NbdClient } from '../../../src/nbd/client.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';
import { MiB, RawConnection, sleep, startServer, type TestServer } from './harness.js';

let ts: TestServer;
const open: RawConnection[] = [];
const raw = async (): Promise<RawConnection> => {
  const c = await RawConnection.open(ts.path);
  open.push(c);
  return c;
};

beforeEach(async () => {
  ts = await startServer({
    exports: [
      { name: 'disk0', volume: new MemoryVolume({ size: 16 * MiB, identity: { name: 'disk0' } }) },
      { name: 'ro', volume: new MemoryVolume({ size: MiB }), readOnly: true, description: 'read-only disk' },
    ],
    server: { defaultExport: 'disk0', limits: { maxOptionLength: 1024, maxOptionDrain: 64 * 1024 } },
  });
});

afterEach(async () => {
  for (const c of open.splice(0)) c.destroy();
  await ts.close();
});

/** A second, well-behaved client must keep working whatever the first one did. */
async function otherClientStillServed(): Promise<void> {
  const c = await NbdClient.connect({ path: ts.path }, { exportName: 'disk0' });
  await c.write(0, Buffer.from('still here'));
  expect(Buffer.from(await c.read(0, 10)).toString()).toBe('still here');
  await c.close();
}

describe('§2.2 fixed newstyle handshake', () => {
  it('greets with NBDMAGIC, IHAVEOPT and FIXED_NEWSTYLE | NO_ZEROES (no other bits)', async () => {
    const c = await raw();
    const g = await c.read(C.NBD_GREETING_SIZE);
    expect(g.subarray(0, 8).toString('latin1')).toBe('NBDMAGIC');
    expect(g.subarray(8, 16).toString('latin1')).toBe('IHAVEOPT');
    expect(g.readUInt16BE(16)).toBe(C.NBD_FLAG_FIXED_NEWSTYLE | C.NBD_FLAG_NO_ZEROES);
  });

  it('drops the connection on an unknown client flag (spec: MUST)', async () => {
    const c = await raw();
    await c.greet(C.NBD_FLAG_C_FIXED_NEWSTYLE | 0x4);
    await c.expectClosed();
    await otherClientStillServed();
  });

  it('answers an unknown option with NBD_REP_ERR_UNSUP, skips its data and keeps parsing', async () => {
    const c = await raw();
    await c.greet();
    const [r] = await c.option(0x1234, Buffer.alloc(100, 7));
    expect(r).toMatchObject({ option: 0x1234, type: C.NBD_REP_ERR_UNSUP });
    const list = await c.option(C.NBD_OPT_LIST);
    expect(list.map((x) => x.type)).toEqual([C.NBD_REP_SERVER, C.NBD_REP_SERVER, C.NBD_REP_ACK]);
  });

  it('NBD_OPT_PEEK_EXPORT, NBD_OPT_STARTTLS (no TLS yet) and NBD_OPT_EXTENDED_HEADERS -> NBD_REP_ERR_UNSUP', async () => {
    const c = await raw();
    await c.greet();
    for (const opt of [C.NBD_OPT_PEEK_EXPORT, C.NBD_OPT_STARTTLS, C.NBD_OPT_EXTENDED_HEADERS]) {
      const [r] = await c.option(opt);
      expect(r!.type).toBe(C.NBD_REP_ERR_UNSUP);
      expect(r!.option).toBe(opt);
    }
  });

  it('NBD_OPT_LIST: one NBD_REP_SERVER per export with its description, then ACK; data -> NBD_REP_ERR_INVALID', async () => {
    const c = await raw();
    await c.greet();
    const replies = await c.option(C.NBD_OPT_LIST);
    const servers = replies.filter((r) => r.type === C.NBD_REP_SERVER).map((r) => decodeServerReply(r.data));
    expect(servers.map((s) => s.name)).toEqual(['disk0', 'ro']);
    expect(servers[0]!.description).toMatch(/^lunrig-identity name=disk0 /);
    expect(servers[1]!.description).toBe('read-only disk');
    const [bad] = await c.option(C.NBD_OPT_LIST, Buffer.from([1]));
    expect(bad!.type).toBe(C.NBD_REP_ERR_INVALID);
  });

  it('NBD_OPT_INFO: one NBD_REP_INFO per item, EXPORT always plus only what was asked, then ACK; stays in negotiation', async () => {
    const c = await raw();
    await c.greet();
    const replies = await c.option(C.NBD_OPT_INFO, encodeGoRequest({ exportName: 'disk0', infoRequests: [C.NBD_INFO_BLOCK_SIZE, C.NBD_INFO_BLOCK_SIZE, 77] }));
    expect(replies.map((r) => r.type)).toEqual([C.NBD_REP_INFO, C.NBD_REP_INFO, C.NBD_REP_ACK]);
    const items = replies.slice(0, 2).map((r) => decodeInfoItem(r.data));
    expect(replies[0]!.data.length).toBe(12);
    expect(replies[1]!.data.length).toBe(14);
    expect(items[0]).toMatchObject({ type: C.NBD_INFO_EXPORT, size: 16 * MiB });
    expect(items[1]).toEqual({ type: C.NBD_INFO_BLOCK_SIZE, minimum: 1, preferred: 4096, maximum: 32 * MiB });
    const withAll = await c.option(C.NBD_OPT_INFO, encodeGoRequest({ exportName: 'ro', infoRequests: [C.NBD_INFO_NAME, C.NBD_INFO_DESCRIPTION] }));
    expect(withAll.slice(0, 3).map((r) => decodeInfoItem(r.data))).toEqual([
      { type: C.NBD_INFO_EXPORT, size: MiB, transmissionFlags: expect.any(Number) },
      { type: C.NBD_INFO_NAME, name: 'ro' },
      { type: C.NBD_INFO_DESCRIPTION, description: 'read-only disk' },
    ]);
    // Still negotiating: a further option is answered.
    const [ack] = await c.option(C.NBD_OPT_STRUCTURED_REPLY);
    expect(ack!.type).toBe(C.NBD_REP_ACK);
  });

  it('NBD_OPT_GO with zero info requests (nbd-client) still sends NBD_INFO_EXPORT, then transmission starts', async () => {
    const c = await raw();
    const { size, flags } = await c.attach('disk0');
    expect(size).toBe(16 * MiB);
    expect(flags & C.NBD_FLAG_HAS_FLAGS).toBeTruthy();
    c.sendRequest({ type: C.NBD_CMD_FLUSH, cookie: 42n });
    expect(await c.simpleReply()).toEqual({ magic: C.NBD_SIMPLE_REPLY_MAGIC, error: 0, cookie: 42n });
  });

  it('GO/INFO for a missing export -> NBD_REP_ERR_UNKNOWN, and the client may try again', async () => {
    const c = await raw();
    await c.greet();
    const [r] = await c.option(C.NBD_OPT_GO, encodeGoRequest({ exportName: 'nope', infoRequests: [] }));
    expect(r!.type).toBe(C.NBD_REP_ERR_UNKNOWN);
    expect(r!.data.toString()).toContain('nope');
    const ok = await c.option(C.NBD_OPT_GO, encodeGoRequest({ exportName: '', infoRequests: [C.NBD_INFO_NAME] }));
    expect(decodeInfoItem(ok[1]!.data)).toEqual({ type: C.NBD_INFO_NAME, name: 'disk0' }); // '' is the default export
  });

  it('malformed GO data -> NBD_REP_ERR_INVALID without desynchronising', async () => {
    const c = await raw();
    await c.greet();
    const bad = encodeGoRequest({ exportName: 'disk0', infoRequests: [1] });
    bad.writeUInt32BE(1000, 0); // name length past the option
    const [r] = await c.option(C.NBD_OPT_GO, bad);
    expect(r!.type).toBe(C.NBD_REP_ERR_INVALID);
    const [r2] = await c.option(C.NBD_OPT_GO, Buffer.alloc(2));
    expect(r2!.type).toBe(C.NBD_REP_ERR_INVALID);
    const go = await c.option(C.NBD_OPT_GO, encodeGoRequest({ exportName: 'disk0', infoRequests: [] }));
    expect(go[go.length - 1]!.type).toBe(C.NBD_REP_ACK);
  });

  it('NBD_OPT_STRUCTURED_REPLY with data -> NBD_REP_ERR_INVALID; SET_META_CONTEXT before it -> NBD_REP_ERR_INVALID', async () => {
    const c = await raw();
    await c.greet();
    expect((await c.option(C.NBD_OPT_STRUCTURED_REPLY, Buffer.from([0])))[0]!.type).toBe(C.NBD_REP_ERR_INVALID);
    const q = encodeMetaContextRequest({ exportName: 'disk0', queries: ['base:allocation'] });
    expect((await c.option(C.NBD_OPT_SET_META_CONTEXT, q))[0]!.type).toBe(C.NBD_REP_ERR_INVALID);
    expect((await c.option(C.NBD_OPT_STRUCTURED_REPLY))[0]!.type).toBe(C.NBD_REP_ACK);
    const set = await c.option(C.NBD_OPT_SET_META_CONTEXT, q);
    expect(set.map((r) => r.type)).toEqual([C.NBD_REP_META_CONTEXT, C.NBD_REP_ACK]);
    expect(decodeMetaContextReply(set[0]!.data)).toEqual({ id: 1, name: 'base:allocation' });
  });

  it('LIST_META_CONTEXT: no query lists everything, "base:" is a wildcard, unknown names are ignored (not errors)', async () => {
    const c = await raw();
    await c.greet();
    await c.option(C.NBD_OPT_STRUCTURED_REPLY);
    const all = await c.option(C.NBD_OPT_LIST_META_CONTEXT, encodeMetaContextRequest({ exportName: 'disk0', queries: [] }));
    expect(all.map((r) => r.type)).toEqual([C.NBD_REP_META_CONTEXT, C.NBD_REP_ACK]);
    expect(decodeMetaContextReply(all[0]!.data)).toEqual({ id: 0, name: 'base:allocation' });
    const wild = await c.option(C.NBD_OPT_LIST_META_CONTEXT, encodeMetaContextRequest({ exportName: 'disk0', queries: ['base:'] }));
    expect(wild).toHaveLength(2);
    const none = await c.option(C.NBD_OPT_LIST_META_CONTEXT, encodeMetaContextRequest({ exportName: 'disk0', queries: ['x-foo:bar', 'qemu:dirty-bitmap:b'] }));
    expect(none.map((r) => r.type)).toEqual([C.NBD_REP_ACK]);
    const unknown = await c.option(C.NBD_OPT_LIST_META_CONTEXT, encodeMetaContextRequest({ exportName: 'zzz', queries: [] }));
    expect(unknown[0]!.type).toBe(C.NBD_REP_ERR_UNKNOWN);
    const truncated = encodeMetaContextRequest({ exportName: 'disk0', queries: ['base:allocation'] });
    expect((await c.option(C.NBD_OPT_LIST_META_CONTEXT, truncated.subarray(0, truncated.length - 2)))[0]!.type).toBe(C.NBD_REP_ERR_INVALID);
  });

  it('contexts set for one export do not carry over to GO on another (BLOCK_STATUS -> EINVAL)', async () => {
    const c = await raw();
    await c.greet();
    await c.option(C.NBD_OPT_STRUCTURED_REPLY);
    await c.option(C.NBD_OPT_SET_META_CONTEXT, encodeMetaContextRequest({ exportName: 'ro', queries: ['base:allocation'] }));
    const go = await c.option(C.NBD_OPT_GO, encodeGoRequest({ exportName: 'disk0', infoRequests: [] }));
    expect(go[go.length - 1]!.type).toBe(C.NBD_REP_ACK);
    c.sendRequest({ type: C.NBD_CMD_BLOCK_STATUS, cookie: 3n, length: 4096 });
    const h = await c.read(20);
    expect(h.readUInt16BE(6)).toBe(C.NBD_REPLY_TYPE_ERROR);
    const payload = await c.read(h.readUInt32BE(16));
    expect(payload.readUInt32BE(0)).toBe(C.NBD_EINVAL);
  });

  it('NBD_OPT_EXPORT_NAME: size, flags and 124 zeroes unless C_NO_ZEROES', async () => {
    const withZeroes = await raw();
    await withZeroes.greet(C.NBD_FLAG_C_FIXED_NEWSTYLE);
    withZeroes.write(encodeOption(C.NBD_OPT_EXPORT_NAME, Buffer.from('disk0')));
    const r = await withZeroes.read(134);
    expect(Number(r.readBigUInt64BE(0))).toBe(16 * MiB);
    expect(r.subarray(10).every((b) => b === 0)).toBe(true);
    withZeroes.sendRequest({ type: C.NBD_CMD_READ, cookie: 9n, length: 4 });
    expect((await withZeroes.simpleReply()).cookie).toBe(9n);
    expect((await withZeroes.read(4)).equals(Buffer.alloc(4))).toBe(true);

    const noZeroes = await raw();
    await noZeroes.greet();
    noZeroes.write(encodeOption(C.NBD_OPT_EXPORT_NAME, Buffer.from('ro')));
    const r2 = await noZeroes.read(10);
    expect(r2.readUInt16BE(8) & C.NBD_FLAG_READ_ONLY).toBeTruthy();
    noZeroes.sendRequest({ type: C.NBD_CMD_FLUSH, cookie: 1n });
    expect((await noZeroes.simpleReply()).error).toBe(0); // no stray zero bytes before the reply
  });

  it('NBD_OPT_EXPORT_NAME for a missing export: no error path, so the server disconnects', async () => {
    const c = await raw();
    await c.greet();
    c.write(encodeOption(C.NBD_OPT_EXPORT_NAME, Buffer.from('missing')));
    await c.expectClosed();
  });

  it('NBD_OPT_ABORT is acknowledged, then the server closes; a client closing first is tolerated', async () => {
    const c = await raw();
    await c.greet();
    const [r] = await c.option(C.NBD_OPT_ABORT);
    expect(r!.type).toBe(C.NBD_REP_ACK);
    await c.expectClosed();
    const d = await raw();
    await d.greet();
    d.write(encodeOption(C.NBD_OPT_ABORT));
    d.destroy();
    await sleep(20);
    await otherClientStillServed();
  });
});

describe('malformed and hostile handshakes', () => {
  it('bad option magic -> disconnect', async () => {
    const c = await raw();
    await c.greet();
    const o = encodeOption(C.NBD_OPT_LIST);
    o[0] = o[0]! ^ 0xff;
    c.write(o);
    await c.expectClosed();
    await otherClientStillServed();
  });

  it('option data over the buffering limit is drained: known -> NBD_REP_ERR_TOO_BIG, unknown -> NBD_REP_ERR_UNSUP', async () => {
    const c = await raw();
    await c.greet();
    const [big] = await c.option(C.NBD_OPT_GO, Buffer.alloc(5000));
    expect(big!.type).toBe(C.NBD_REP_ERR_TOO_BIG);
    const [unk] = await c.option(99, Buffer.alloc(5000));
    expect(unk!.type).toBe(C.NBD_REP_ERR_UNSUP);
    const list = await c.option(C.NBD_OPT_LIST);
    expect(list[list.length - 1]!.type).toBe(C.NBD_REP_ACK);
  });

  it('a huge option length (DoS) -> disconnect without buffering', async () => {
    const c = await raw();
    await c.greet();
    const h = encodeOption(C.NBD_OPT_GO);
    h.writeUInt32BE(0xffffffff, 12);
    c.write(h);
    await c.expectClosed();
    await otherClientStillServed();
  });

  it('a truncated option followed by EOF ends the connection cleanly; others are unaffected', async () => {
    const c = await raw();
    await c.greet();
    const o = encodeOption(C.NBD_OPT_GO, encodeGoRequest({ exportName: 'disk0', infoRequests: [] }));
    c.write(o.subarray(0, o.length - 3));
    c.socket.end();
    await c.expectClosed();
    const d = await raw();
    await d.greet();
    d.write(Buffer.from([0x49, 0x48]));
    d.socket.end();
    await d.expectClosed();
    await otherClientStillServed();
  });

  it('garbage after the handshake (bad request magic) -> disconnect while another client keeps being served', async () => {
    const good = await NbdClient.connect({ path: ts.path }, { exportName: 'disk0' });
    const c = await raw();
    await c.attach('disk0', { structured: true });
    c.write(Buffer.from('GET / HTTP/1.1\r\nHost: example.org\r\n\r\n'));
    await c.expectClosed();
    await good.write(4096, Buffer.alloc(4096, 1));
    expect(Buffer.from(await good.read(4096, 4096)).every((b) => b === 1)).toBe(true);
    await good.close();
  });

  it('closing the server ends connections that are still negotiating', async () => {
    const c = await raw();
    await c.greet();
    await c.option(C.NBD_OPT_STRUCTURED_REPLY);
    await ts.server.close();
    await c.expectClosed();
  });
});

describe('handshake timeout', () => {
  it('a client that never finishes the handshake is dropped', async () => {
    const t = await startServer({ server: { limits: { handshakeTimeoutMs: 100 } } });
    try {
      const c = await RawConnection.open(t.path);
      await c.greet();
      await c.expectClosed(2000);
    } finally {
      await t.close();
    }
  });
});
