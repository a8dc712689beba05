import { describe, expect, it } from 'vitest';
import * as C from '../../../src/nbd/constants.js';
import { validateRequest, type RequestContext } from '../../../src/nbd/request-validation.js';
import type { RequestHeader } from '../../../src/nbd/request-codec.js';

const SIZE = 1 << 20;
const WRITABLE =
  C.NBD_FLAG_HAS_FLAGS |
  C.NBD_FLAG_SEND_FLUSH |
  C.NBD_FLAG_SEND_FUA |
  C.NBD_FLAG_SEND_TRIM |
  C.NBD_FLAG_SEND_WRITE_ZEROES |
  C.NBD_FLAG_SEND_FAST_ZERO |
  C.NBD_FLAG_SEND_CACHE |
  C.NBD_FLAG_SEND_DF |
  C.NBD_FLAG_CAN_MULTI_CONN;

const ctx = (over: Partial<RequestContext> = {}): RequestContext => ({
  size: SIZE,
  transmissionFlags: WRITABLE,
  structuredReplies: true,
  hasMetaContext: true,
  blockSize: { minimum: 1, preferred: 4096, maximum: 32 * 2 ** 20 },
  ...over,
});
const req = (type: number, over: Partial<RequestHeader> = {}): RequestHeader => ({ type, flags: 0, cookie: 1n, offset: 0, length: 512, ...over });
const errno = (r: RequestHeader, c = ctx()): number => validateRequest(r, c)?.errno ?? 0;

describe('request validation (spec/nbd.md §4, transmission phase)', () => {
  it('accepts well-formed requests of every command', () => {
    for (const t of [C.NBD_CMD_READ, C.NBD_CMD_WRITE, C.NBD_CMD_TRIM, C.NBD_CMD_CACHE, C.NBD_CMD_WRITE_ZEROES, C.NBD_CMD_BLOCK_STATUS]) {
      expect(errno(req(t))).toBe(0);
    }
    expect(errno(req(C.NBD_CMD_FLUSH, { length: 0 }))).toBe(0);
    expect(errno(req(C.NBD_CMD_WRITE_ZEROES, { flags: C.NBD_CMD_FLAG_NO_HOLE | C.NBD_CMD_FLAG_FAST_ZERO | C.NBD_CMD_FLAG_FUA }))).toBe(0);
    expect(errno(req(C.NBD_CMD_READ, { flags: C.NBD_CMD_FLAG_DF | C.NBD_CMD_FLAG_FUA }))).toBe(0); // FUA accepted on any command
    expect(errno(req(C.NBD_CMD_BLOCK_STATUS, { flags: C.NBD_CMD_FLAG_REQ_ONE }))).toBe(0);
    expect(errno(req(C.NBD_CMD_READ, { offset: SIZE - 512 }))).toBe(0);
    expect(errno(req(C.NBD_CMD_READ, { offset: SIZE, length: 0 }))).toBe(0);
  });

  it('unknown command -> EINVAL (RESIZE and beyond included)', () => {
    expect(errno(req(C.NBD_CMD_RESIZE))).toBe(C.NBD_EINVAL);
    expect(errno(req(0xffff))).toBe(C.NBD_EINVAL);
  });

  it('write, trim, write-zeroes on a read-only export -> EPERM, before any other check', () => {
    const ro = ctx({ transmissionFlags: C.NBD_FLAG_HAS_FLAGS | C.NBD_FLAG_READ_ONLY | C.NBD_FLAG_SEND_FLUSH });
    for (const t of [C.NBD_CMD_WRITE, C.NBD_CMD_TRIM, C.NBD_CMD_WRITE_ZEROES]) {
      expect(errno(req(t), ro)).toBe(C.NBD_EPERM);
      expect(errno(req(t, { offset: SIZE * 2, flags: 0x8000 }), ro)).toBe(C.NBD_EPERM);
    }
    expect(errno(req(C.NBD_CMD_READ), ro)).toBe(0);
  });

  it('unknown flags -> EINVAL; misapplied flags -> EINVAL', () => {
    expect(errno(req(C.NBD_CMD_READ, { flags: 0x40 }))).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_WRITE, { flags: C.NBD_CMD_FLAG_PAYLOAD_LEN }))).toBe(C.NBD_EINVAL); // extended headers only
    expect(errno(req(C.NBD_CMD_WRITE, { flags: C.NBD_CMD_FLAG_NO_HOLE }))).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_TRIM, { flags: C.NBD_CMD_FLAG_FAST_ZERO }))).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_WRITE, { flags: C.NBD_CMD_FLAG_DF }))).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_READ, { flags: C.NBD_CMD_FLAG_REQ_ONE }))).toBe(C.NBD_EINVAL);
  });

  it('flags and commands that were not advertised -> EINVAL', () => {
    const bare = ctx({ transmissionFlags: C.NBD_FLAG_HAS_FLAGS, structuredReplies: false, hasMetaContext: false });
    expect(errno(req(C.NBD_CMD_WRITE, { flags: C.NBD_CMD_FLAG_FUA }), bare)).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_READ, { flags: C.NBD_CMD_FLAG_DF }), bare)).toBe(C.NBD_EINVAL); // DF without structured replies
    expect(errno(req(C.NBD_CMD_FLUSH, { length: 0 }), bare)).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_TRIM), bare)).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_WRITE_ZEROES), bare)).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_CACHE), bare)).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_WRITE_ZEROES, { flags: C.NBD_CMD_FLAG_FAST_ZERO }), ctx({ transmissionFlags: WRITABLE & ~C.NBD_FLAG_SEND_FAST_ZERO }))).toBe(
      C.NBD_EINVAL,
    );
  });

  it('BLOCK_STATUS without structured replies or without a negotiated context -> EINVAL', () => {
    expect(errno(req(C.NBD_CMD_BLOCK_STATUS), ctx({ structuredReplies: false }))).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_BLOCK_STATUS), ctx({ hasMetaContext: false }))).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_BLOCK_STATUS, { length: 0 }))).toBe(C.NBD_EINVAL);
  });

  it('FLUSH with nonzero offset or length -> EINVAL', () => {
    expect(errno(req(C.NBD_CMD_FLUSH, { offset: 1, length: 0 }))).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_FLUSH, { length: 1 }))).toBe(C.NBD_EINVAL);
  });

  it('beyond the end: WRITE and WRITE_ZEROES -> ENOSPC; READ, TRIM, CACHE, BLOCK_STATUS -> EINVAL', () => {
    const past = { offset: SIZE - 100, length: 512 };
    expect(errno(req(C.NBD_CMD_WRITE, past))).toBe(C.NBD_ENOSPC);
    expect(errno(req(C.NBD_CMD_WRITE_ZEROES, past))).toBe(C.NBD_ENOSPC);
    expect(errno(req(C.NBD_CMD_READ, past))).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_TRIM, past))).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_CACHE, past))).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_BLOCK_STATUS, past))).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_READ, { offset: 2 ** 64 - 1, length: 1 }))).toBe(C.NBD_EINVAL);
  });

  it('READ/WRITE longer than the maximum payload -> EINVAL; trims and zeroes may be longer', () => {
    const big = ctx({ size: 2 ** 33 });
    expect(errno(req(C.NBD_CMD_READ, { length: 32 * 2 ** 20 + 1 }), big)).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_WRITE, { length: 32 * 2 ** 20 + 1 }), big)).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_READ, { length: 32 * 2 ** 20 }), big)).toBe(0);
    expect(errno(req(C.NBD_CMD_TRIM, { length: 2 ** 32 - 1 }), big)).toBe(0);
    expect(errno(req(C.NBD_CMD_WRITE_ZEROES, { length: 2 ** 32 - 1 }), big)).toBe(0);
    expect(errno(req(C.NBD_CMD_BLOCK_STATUS, { length: 2 ** 32 - 1 }), big)).toBe(0);
  });

  it('misaligned to an advertised minimum block size -> EINVAL', () => {
    const aligned = ctx({ blockSize: { minimum: 512, preferred: 4096, maximum: 2 ** 25 } });
    expect(errno(req(C.NBD_CMD_READ, { offset: 512, length: 1024 }), aligned)).toBe(0);
    expect(errno(req(C.NBD_CMD_READ, { offset: 100, length: 512 }), aligned)).toBe(C.NBD_EINVAL);
    expect(errno(req(C.NBD_CMD_WRITE, { offset: 512, length: 100 }), aligned)).toBe(C.NBD_EINVAL);
  });
});
