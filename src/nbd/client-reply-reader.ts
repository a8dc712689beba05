/**
 * The client's incremental reply parser: simple replies and structured
 * chunks, matched to requests by cookie, in any order. READ data is copied
 * straight from the socket's chunks into the caller's buffer as it arrives;
 * only small payloads (block status, errors) are gathered whole. Any protocol
 * violation throws NbdWireError and the client drops the connection.
 */
import type { ByteQueue } from './byte-queue.js';
import * as C from './constants.js';
import {
  decodeBlockStatusPayload,
  decodeChunkHeader,
  decodeErrorPayload,
  decodeOffsetHole,
  decodeSimpleReply,
  isErrorChunkType,
  type BlockDescriptor,
  type ChunkHeader,
} from './reply-codec.js';
import { NbdWireError, readU64 } from './wire.js';

export interface PendingRequest {
  cookie: bigint;
  type: number;
  offset: number;
  length: number;
  /** READ destination of `length` bytes. */
  buffer: Uint8Array | undefined;
  /** READ bytes covered by data and hole chunks so far. */
  covered: number;
  error: { errno: number; message: string; offset?: number } | undefined;
  /** Structured chunk types received, in order (for tests and diagnostics). */
  chunkTypes: number[];
  /** BLOCK_STATUS descriptors by context id. */
  blockStatus: Map<number, BlockDescriptor[]>;
  /** Answered with a simple reply. */
  simple: boolean;
}

export interface PendingTable {
  get(cookie: bigint): PendingRequest | undefined;
  /** The reply is complete; the table forgets the cookie. */
  complete(p: PendingRequest): void;
}

/** Largest non-data chunk payload accepted: 2^20 block descriptors and some slack. */
const MAX_SMALL_PAYLOAD = 8 * 2 ** 20 + 4096;

type State =
  | { kind: 'header' }
  | { kind: 'simpleData'; p: PendingRequest; at: number; remaining: number }
  | { kind: 'offset'; p: PendingRequest; h: ChunkHeader }
  | { kind: 'offsetData'; p: PendingRequest; h: ChunkHeader; at: number; remaining: number }
  | { kind: 'payload'; p: PendingRequest; h: ChunkHeader };

export class ReplyReader {
  private state: State = { kind: 'header' };

  constructor(
    private readonly queue: ByteQueue,
    private readonly table: PendingTable,
  ) {}

  /** True while a reply is partly parsed. */
  get midReply(): boolean {
    return this.state.kind !== 'header' || this.queue.length > 0;
  }

  feed(): void {
    while (this.step()) {
      // keep parsing
    }
  }

  private step(): boolean {
    const q = this.queue;
    const s = this.state;
    switch (s.kind) {
      case 'header': {
        if (q.length < 4) return false;
        const magic = q.peek(4).readUInt32BE(0);
        if (magic === C.NBD_SIMPLE_REPLY_MAGIC) {
          if (q.length < C.NBD_SIMPLE_REPLY_SIZE) return false;
          this.onSimple(q.take(C.NBD_SIMPLE_REPLY_SIZE));
          return true;
        }
        if (magic === C.NBD_STRUCTURED_REPLY_MAGIC) {
          if (q.length < C.NBD_STRUCTURED_REPLY_SIZE) return false;
          this.onChunkHeader(decodeChunkHeader(q.take(C.NBD_STRUCTURED_REPLY_SIZE)));
          return true;
        }
        throw new NbdWireError(`bad reply magic 0x${magic.toString(16)}`);
      }
      case 'simpleData': {
        const n = q.copyInto(s.p.buffer!, s.at, s.remaining);
        s.at += n;
        s.remaining -= n;
        if (s.remaining > 0) return false;
        s.p.covered = s.p.length;
        this.finish(s.p);
        return true;
      }
      case 'offset': {
        if (q.length < 8) return false;
        const offset = readU64(q.take(8), 0);
        const p = s.p;
        const dataLength = s.h.length - 8;
        if (offset < p.offset || offset + dataLength > p.offset + p.length) throw new NbdWireError('OFFSET_DATA outside the requested range');
        this.state = { kind: 'offsetData', p, h: s.h, at: offset - p.offset, remaining: dataLength };
        return true;
      }
      case 'offsetData': {
        const n = q.copyInto(s.p.buffer!, s.at, s.remaining);
        s.at += n;
        s.remaining -= n;
        if (s.remaining > 0) return false;
        s.p.covered += s.h.length - 8;
        this.endChunk(s.p, s.h);
        return true;
      }
      case 'payload': {
        if (q.length < s.h.length) return false;
        this.onPayload(s.p, s.h, q.take(s.h.length));
        this.endChunk(s.p, s.h);
        return true;
      }
    }
  }

  private lookup(cookie: bigint): PendingRequest {
    const p = this.table.get(cookie);
    if (!p) throw new NbdWireError(`reply for unknown cookie ${cookie}`);
    return p;
  }

  private onSimple(b: Buffer): void {
    const { error, cookie } = decodeSimpleReply(b);
    const p = this.lookup(cookie);
    if (p.chunkTypes.length > 0) throw new NbdWireError('simple reply in the middle of a structured reply');
    p.simple = true;
    if (error !== 0) {
      p.error = { errno: error, message: '' };
      this.finish(p);
    } else if (p.type === C.NBD_CMD_READ && p.length > 0) {
      this.state = { kind: 'simpleData', p, at: 0, remaining: p.length };
    } else this.finish(p);
  }

  private onChunkHeader(h: ChunkHeader): void {
    const p = this.lookup(h.cookie);
    p.chunkTypes.push(h.type);
    if (h.type === C.NBD_REPLY_TYPE_OFFSET_DATA) {
      if (p.type !== C.NBD_CMD_READ) throw new NbdWireError('OFFSET_DATA chunk for a command other than READ');
      if (h.length < 9) throw new NbdWireError(`OFFSET_DATA chunk of ${h.length} bytes`);
      this.state = { kind: 'offset', p, h };
      return;
    }
    if (h.type === C.NBD_REPLY_TYPE_NONE) {
      if (h.length !== 0 || !(h.flags & C.NBD_REPLY_FLAG_DONE)) throw new NbdWireError('NONE chunk with a payload or without DONE');
      this.finish(p);
      return;
    }
    if (h.length > MAX_SMALL_PAYLOAD) throw new NbdWireError(`reply chunk type ${h.type} of ${h.length} bytes`);
    this.state = { kind: 'payload', p, h };
  }

  private onPayload(p: PendingRequest, h: ChunkHeader, payload: Buffer): void {
    if (h.type === C.NBD_REPLY_TYPE_OFFSET_HOLE) {
      if (p.type !== C.NBD_CMD_READ) throw new NbdWireError('OFFSET_HOLE chunk for a command other than READ');
      const { offset, length } = decodeOffsetHole(payload);
      if (length === 0 || offset < p.offset || offset + length > p.offset + p.length) throw new NbdWireError('OFFSET_HOLE outside the requested range');
      p.buffer!.fill(0, offset - p.offset, offset - p.offset + length);
      p.covered += length;
    } else if (h.type === C.NBD_REPLY_TYPE_BLOCK_STATUS) {
      if (p.type !== C.NBD_CMD_BLOCK_STATUS) throw new NbdWireError('BLOCK_STATUS chunk for another command');
      const { contextId, descriptors } = decodeBlockStatusPayload(payload);
      p.blockStatus.set(contextId, descriptors);
    } else if (isErrorChunkType(h.type)) {
      // Unknown error types still carry an errno first (spec: treat them as errors).
      const e = h.type === C.NBD_REPLY_TYPE_ERROR || h.type === C.NBD_REPLY_TYPE_ERROR_OFFSET ? decodeErrorPayload(h.type, payload) : { errno: payload.length >= 4 ? payload.readUInt32BE(0) : C.NBD_EINVAL, message: '' };
      const errno = 'error' in e ? e.error : e.errno;
      p.error ??= { errno: errno === 0 ? C.NBD_EINVAL : errno, message: e.message, ...('offset' in e && e.offset !== undefined ? { offset: e.offset } : {}) };
    } else {
      throw new NbdWireError(`unknown reply chunk type ${h.type}`);
    }
  }

  private endChunk(p: PendingRequest, h: ChunkHeader): void {
    this.state = { kind: 'header' };
    if (h.flags & C.NBD_REPLY_FLAG_DONE) this.finish(p);
  }

  private finish(p: PendingRequest): void {
    this.state = { kind: 'header' };
    this.table.complete(p);
  }
}
