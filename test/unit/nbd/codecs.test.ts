import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as C from '../../../src/nbd/constants.js';
import {
  decodeExportNameReply,
  decodeGreeting,
  decodeOptionHeader,
  decodeOptionReplyHeader,
  encodeExportNameReply,
  encodeGreeting,
  encodeOption,
  encodeOptionReply,
} from '../../../src/nbd/handshake-codec.js';
import {
  decodeGoRequest,
  decodeInfoItem,
  decodeMetaContextReply,
  decodeMetaContextRequest,
  decodeServerReply,
  encodeGoRequest,
  encodeInfoItem,
  encodeMetaContextReply,
  encodeMetaContextRequest,
  encodeServerReply,
  truncateUtf8,
} from '../../../src/nbd/option-data-codec.js';
import {
  decodeBlockStatusPayload,
  decodeChunkHeader,
  decodeErrorPayload,
  decodeOffsetHole,
  decodeSimpleReply,
  encodeBlockStatusChunk,
  encodeErrorChunk,
  encodeOffsetDataHeader,
  encodeOffsetHoleChunk,
  encodeSimpleReply,
} from '../../../src/nbd/reply-codec.js';
import { decodeRequestHeader, encodeRequestHeader } from '../../../src/nbd/request-codec.js';
import { NbdWireError, readU64, writeU64 } from '../../../src/nbd/wire.js';
import { extentsToDescriptors } from '../../../src/nbd/block-status.js';
import { formatIdentityDescription, parseIdentityDescription } from '../../../src/nbd/identity-description.js';
import { selectContexts } from '../../../src/nbd/meta-context.js';

describe('§2.1 constants and wire basics', () => {
  it('magic numbers match the spec table', () => {
    expect(C.NBD_INIT_PASSWD).toBe(0x4e42444d41474943n);
    expect(Buffer.from('NBDMAGIC').readBigUInt64BE(0)).toBe(C.NBD_INIT_PASSWD);
    expect(Buffer.from('IHAVEOPT').readBigUInt64BE(0)).toBe(C.NBD_OPTS_MAGIC);
    expect(C.NBD_REP_MAGIC).toBe(0x0003e889045565a9n);
    expect(C.NBD_REQUEST_MAGIC).toBe(0x25609513);
    expect(C.NBD_SIMPLE_REPLY_MAGIC).toBe(0x67446698);
    expect(C.NBD_STRUCTURED_REPLY_MAGIC).toBe(0x668e33ef);
    expect(C.NBD_REPLY_TYPE_BLOCK_STATUS).toBe(5); // not 3 as in the reference nbd.h
    expect(C.NBD_REP_ERR_UNSUP).toBe(2 ** 31 + 1);
    expect(C.NBD_REPLY_TYPE_ERROR).toBe(32769);
  });

  it('u64 round-trips every safe integer and reads huge values as past-the-end numbers', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (n) => {
        const b = Buffer.alloc(8);
        writeU64(b, n, 0);
        expect(b.readBigUInt64BE(0)).toBe(BigInt(n));
        expect(readU64(b, 0)).toBe(n);
      }),
      { seed: 42 },
    );
    const max = Buffer.alloc(8, 0xff);
    expect(readU64(max, 0)).toBeGreaterThan(Number.MAX_SAFE_INTEGER);
  });
});

describe('§2.2 handshake framing', () => {
  it('greeting is 18 bytes with FIXED_NEWSTYLE | NO_ZEROES', () => {
    const g = encodeGreeting(C.NBD_FLAG_FIXED_NEWSTYLE | C.NBD_FLAG_NO_ZEROES);
    expect(g.length).toBe(18);
    expect(decodeGreeting(g).handshakeFlags).toBe(3);
    const bad = Buffer.from(g);
    bad[0] = 0;
    expect(() => decodeGreeting(bad)).toThrow(NbdWireError);
  });

  it('option request and reply headers round-trip; bad magic throws', () => {
    const o = encodeOption(C.NBD_OPT_GO, Buffer.from([1, 2, 3]));
    expect(decodeOptionHeader(o)).toEqual({ option: C.NBD_OPT_GO, length: 3 });
    const r = encodeOptionReply(C.NBD_OPT_GO, C.NBD_REP_ERR_UNKNOWN, Buffer.from('x'));
    expect(decodeOptionReplyHeader(r)).toEqual({ option: C.NBD_OPT_GO, type: C.NBD_REP_ERR_UNKNOWN, length: 1 });
    expect(() => decodeOptionHeader(Buffer.alloc(16))).toThrow(NbdWireError);
  });

  it('EXPORT_NAME reply has 124 zero bytes unless C_NO_ZEROES', () => {
    expect(encodeExportNameReply(4096, 3, false).length).toBe(134);
    const short = encodeExportNameReply(4096, 3, true);
    expect(short.length).toBe(10);
    expect(decodeExportNameReply(short)).toEqual({ size: 4096, transmissionFlags: 3 });
  });

  it('GO/INFO data round-trips and rejects inconsistent lengths', () => {
    const req = { exportName: 'lun0', infoRequests: [C.NBD_INFO_BLOCK_SIZE, C.NBD_INFO_NAME] };
    expect(decodeGoRequest(encodeGoRequest(req))).toEqual(req);
    const b = encodeGoRequest(req);
    expect(() => decodeGoRequest(b.subarray(0, b.length - 1))).toThrow(NbdWireError);
    const hugeName = Buffer.from(b);
    hugeName.writeUInt32BE(0xffffffff, 0);
    expect(() => decodeGoRequest(hugeName)).toThrow(NbdWireError);
    expect(() => decodeGoRequest(Buffer.alloc(3))).toThrow(NbdWireError);
  });

  it('meta context requests round-trip; counts the data cannot hold are refused', () => {
    const req = { exportName: 'e', queries: ['base:allocation', 'qemu:dirty-bitmap:x', ''] };
    expect(decodeMetaContextRequest(encodeMetaContextRequest(req))).toEqual(req);
    const b = encodeMetaContextRequest({ exportName: 'e', queries: [] });
    b.writeUInt32BE(0x7fffffff, 5);
    expect(() => decodeMetaContextRequest(b)).toThrow(/claims/);
  });

  it('info items have the exact lengths clients check (EXPORT 12, BLOCK_SIZE 14)', () => {
    const exp = encodeInfoItem({ type: C.NBD_INFO_EXPORT, size: 2 ** 40, transmissionFlags: 0xded });
    expect(exp.length).toBe(12);
    expect(decodeInfoItem(exp)).toEqual({ type: 0, size: 2 ** 40, transmissionFlags: 0xded });
    const bs = encodeInfoItem({ type: C.NBD_INFO_BLOCK_SIZE, minimum: 1, preferred: 4096, maximum: 32 * 2 ** 20 });
    expect(bs.length).toBe(14);
    expect(decodeInfoItem(bs)).toMatchObject({ minimum: 1, preferred: 4096, maximum: 32 * 2 ** 20 });
    expect(decodeInfoItem(encodeInfoItem({ type: C.NBD_INFO_NAME, name: 'nå' }))).toEqual({ type: 1, name: 'nå' });
    expect(decodeInfoItem(Buffer.from([0, 9]))).toEqual({ type: 'unknown', infoType: 9 });
    expect(() => decodeInfoItem(exp.subarray(0, 11))).toThrow(NbdWireError);
  });

  it('NBD_REP_SERVER and NBD_REP_META_CONTEXT round-trip', () => {
    expect(decodeServerReply(encodeServerReply({ name: 'a', description: 'b c' }))).toEqual({ name: 'a', description: 'b c' });
    expect(decodeMetaContextReply(encodeMetaContextReply({ id: 7, name: 'base:allocation' }))).toEqual({ id: 7, name: 'base:allocation' });
  });

  it('strings over 4096 bytes are refused when decoded (export names, queries)', () => {
    const longName = 'n'.repeat(4097);
    const go = Buffer.concat([Buffer.from([0, 0, 0x10, 0x01]), Buffer.from(longName), Buffer.from([0, 0])]);
    expect(() => decodeGoRequest(go)).toThrow(/longer than 4096/);
    expect(() => encodeGoRequest({ exportName: longName, infoRequests: [] })).toThrow(NbdWireError);
    const q = encodeMetaContextRequest({ exportName: 'e', queries: ['q'.repeat(4096)] });
    expect(decodeMetaContextRequest(q).queries[0]).toHaveLength(4096);
  });

  it('strings are cut at 4096 bytes on a character boundary', () => {
    const s = 'é'.repeat(3000); // 6000 bytes
    const t = truncateUtf8(s, 4096);
    expect(t.length).toBe(4096);
    expect(t.toString('utf8')).toBe('é'.repeat(2048));
    expect(truncateUtf8('aé', 2).toString()).toBe('a');
  });
});

describe('§2.4 transmission framing', () => {
  it('request header is 28 bytes and round-trips', () => {
    fc.assert(
      fc.property(
        fc.record({
          flags: fc.integer({ min: 0, max: 0xffff }),
          type: fc.integer({ min: 0, max: 0xffff }),
          cookie: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          offset: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
          length: fc.integer({ min: 0, max: 0xffffffff }),
        }),
        (req) => {
          const b = encodeRequestHeader(req);
          expect(b.length).toBe(28);
          expect(decodeRequestHeader(b)).toEqual(req);
        },
      ),
      { seed: 7 },
    );
    expect(() => decodeRequestHeader(Buffer.alloc(28))).toThrow(/bad request magic/);
  });

  it('simple reply and structured chunks encode per the spec', () => {
    const s = encodeSimpleReply(C.NBD_EINVAL, 99n);
    expect(s.length).toBe(16);
    expect(decodeSimpleReply(s)).toEqual({ error: 22, cookie: 99n });

    const d = encodeOffsetDataHeader(C.NBD_REPLY_FLAG_DONE, 5n, 4096, 512);
    expect(decodeChunkHeader(d)).toEqual({ flags: 1, type: C.NBD_REPLY_TYPE_OFFSET_DATA, cookie: 5n, length: 520 });
    expect(readU64(d, 20)).toBe(4096);

    const h = encodeOffsetHoleChunk(0, 5n, 8192, 1024);
    expect(decodeChunkHeader(h).length).toBe(12);
    expect(decodeOffsetHole(h.subarray(20))).toEqual({ offset: 8192, length: 1024 });

    const bs = encodeBlockStatusChunk(1, 6n, 1, [
      { length: 4096, flags: 3 },
      { length: 512, flags: 0 },
    ]);
    expect(decodeChunkHeader(bs)).toMatchObject({ type: 5, length: 20 });
    expect(decodeBlockStatusPayload(bs.subarray(20))).toEqual({
      contextId: 1,
      descriptors: [
        { length: 4096, flags: 3 },
        { length: 512, flags: 0 },
      ],
    });

    const e = encodeErrorChunk(1, 7n, C.NBD_ENOSPC, 'full');
    expect(decodeChunkHeader(e)).toMatchObject({ type: C.NBD_REPLY_TYPE_ERROR, length: 10 });
    expect(decodeErrorPayload(C.NBD_REPLY_TYPE_ERROR, e.subarray(20))).toEqual({ error: 28, message: 'full' });
    const eo = encodeErrorChunk(1, 7n, C.NBD_EIO, 'bad', 1234);
    expect(decodeErrorPayload(C.NBD_REPLY_TYPE_ERROR_OFFSET, eo.subarray(20))).toEqual({ error: 5, message: 'bad', offset: 1234 });
  });
});

describe('§2.7 base:allocation descriptors', () => {
  it('maps hole -> HOLE|ZERO, zero -> ZERO, data -> 0 and merges equal neighbours', () => {
    const d = extentsToDescriptors(
      [
        { offset: 0, length: 100, kind: 'hole' },
        { offset: 100, length: 50, kind: 'zero' },
        { offset: 150, length: 50, kind: 'zero' },
        { offset: 200, length: 100, kind: 'data' },
      ],
      0,
      300,
    );
    expect(d).toEqual([
      { length: 100, flags: 3 },
      { length: 100, flags: 2 },
      { length: 100, flags: 0 },
    ]);
  });

  it('REQ_ONE: exactly one extent, no longer than the request', () => {
    expect(extentsToDescriptors([{ offset: 0, length: 1000, kind: 'hole' }], 0, 10, { reqOne: true })).toEqual([{ length: 10, flags: 3 }]);
    expect(
      extentsToDescriptors(
        [
          { offset: 0, length: 5, kind: 'data' },
          { offset: 5, length: 5, kind: 'hole' },
        ],
        0,
        10,
        { reqOne: true },
      ),
    ).toEqual([{ length: 5, flags: 0 }]);
  });

  it('caps the number of descriptors, and answers status 0 when the volume gave nothing usable', () => {
    const many = Array.from({ length: 10 }, (_, i) => ({ offset: i, length: 1, kind: (i % 2 ? 'data' : 'hole') as 'data' | 'hole' }));
    expect(extentsToDescriptors(many, 0, 10, { maxDescriptors: 3 })).toHaveLength(3);
    expect(extentsToDescriptors([], 0, 10)).toEqual([{ length: 10, flags: 0 }]);
    expect(extentsToDescriptors([{ offset: 5, length: 5, kind: 'hole' }], 0, 10)).toEqual([{ length: 10, flags: 0 }]);
  });

  it('LIST treats no query and "base:" as wildcards; SET takes exact names only', () => {
    expect(selectContexts([], 'list').map((c) => c.name)).toEqual(['base:allocation']);
    expect(selectContexts(['base:'], 'list').map((c) => c.name)).toEqual(['base:allocation']);
    expect(selectContexts(['base:'], 'set')).toEqual([]);
    expect(selectContexts([], 'set')).toEqual([]);
    expect(selectContexts(['qemu:dirty-bitmap:a', 'base:allocation'], 'set').map((c) => c.id)).toEqual([1]);
    expect(selectContexts(['x-unknown:leaf'], 'list')).toEqual([]);
  });
});

describe('identity in the export description', () => {
  it('round-trips, including odd characters, and ignores descriptions without the token', () => {
    const id = { name: 'lun 0/ä', volumeId: '10001ABCD', uniqueId: '6005076'.padEnd(32, '0'), serial: 'ABCDE', lss: 0x11 };
    const text = formatIdentityDescription(id);
    expect(text.startsWith('lunrig-identity ')).toBe(true);
    expect(parseIdentityDescription(text)).toEqual(id);
    expect(parseIdentityDescription(`my disk ${text}`)).toEqual(id);
    expect(parseIdentityDescription('just a disk')).toBeUndefined();
    expect(parseIdentityDescription('lunrig-identity name=x')).toBeUndefined();
  });
});
