/**
 * An NBD client that is a Volume: a PPRC secondary on another server, a
 * multipath path, a test's view of an export. Many requests in flight, matched
 * by cookie, replies in any order; NBD errno values come back as LunrigError
 * codes (errno-map.ts).
 *
 * Volume semantics over NBD:
 *  - read/write larger than the server's maximum payload are split;
 *  - write({ fua }) uses NBD_CMD_FLAG_FUA, or write + FLUSH without SEND_FUA;
 *  - trim() must leave the range reading as zeros (Volume contract), which NBD
 *    TRIM does not promise, so it is sent as WRITE_ZEROES without NO_HOLE (may
 *    punch holes); writeZeroes() maps to WRITE_ZEROES with NO_HOLE / FAST_ZERO;
 *    without SEND_WRITE_ZEROES both write zero-filled buffers (fastZero fails);
 *  - blockStatus() uses base:allocation when negotiated, else reports data;
 *  - identity() comes from the lunrig identity token in the export description
 *    (identity-description.ts), else is derived from the target and export name.
 *
 * With `tls`, STARTTLS is the first option and everything after it runs over
 * TLS (tls-client.ts); `tls` on the client then tells how it was secured.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { LunrigError } from '../errors.js';
import { checkRange } from '../volume/range-check.js';
import type { Extent, ExtentKind, Volume, VolumeIdentity, WriteOptions, WriteZeroesOptions } from '../volume/volume.js';
import { abortSession, listExports, negotiateExport, openSession, type HandshakeResult } from './client-handshake.js';
import { ReplyReader, type PendingRequest, type PendingTable } from './client-reply-reader.js';
import * as C from './constants.js';
import { CorkedWriter } from './corked-writer.js';
import { errorCodeForErrno } from './errno-map.js';
import { parseIdentityDescription } from './identity-description.js';
import type { BlockSizeConstraints, ExportListing } from './option-data-codec.js';
import type { BlockDescriptor } from './reply-codec.js';
import { commandName, errnoName } from './protocol-names.js';
import { encodeRequestHeader } from './request-codec.js';
import { SocketReader } from './socket-reader.js';
import { checkClientTlsOptions, startClientTls, type ClientTlsInfo, type NbdClientTlsOptions } from './tls-client.js';
import { NbdWireError } from './wire.js';

export type NbdTarget = { host: string; port?: number } | { path: string };

export interface NbdClientOptions {
  /** Export to attach ('' is the server's default export). */
  exportName: string;
  /** Negotiate structured replies (default true). */
  structuredReplies?: boolean;
  /** Meta contexts to select (default ['base:allocation']; needs structured replies). */
  metaContexts?: string[];
  /** Connect plus handshake time limit (default 10 s). */
  connectTimeoutMs?: number;
  /** Requests on the wire at once; more wait in the client (default 64). */
  maxInFlight?: number;
  /** STARTTLS before anything else (tls-client.ts). */
  tls?: NbdClientTlsOptions;
}

/** A request sent as is, bypassing the client's checks (tests, diagnostics). */
export interface RawRequest {
  type: number;
  flags?: number;
  offset?: number;
  length?: number;
  /** WRITE payload; `length` defaults to its size. */
  data?: Uint8Array;
}

export interface RawReply {
  /** 0 on success. */
  errno: number;
  message: string;
  /** READ data when the reply succeeded. */
  data: Buffer | undefined;
  simple: boolean;
  chunkTypes: number[];
  blockStatus: Map<number, BlockDescriptor[]>;
}

export interface NbdClientEvents {
  /** The connection ended other than by close(); requests in flight failed with UNREACHABLE. */
  disconnect: [error: LunrigError];
}

interface Pending extends PendingRequest {
  resolve: (p: PendingRequest) => void;
  reject: (err: LunrigError) => void;
}

const DEFAULT_MAX_PAYLOAD = C.NBD_DEFAULT_MAXIMUM_PAYLOAD;
/** Largest WRITE_ZEROES / BLOCK_STATUS effect length sent in one request (u32, kept well inside). */
const MAX_EFFECT_LENGTH = 1024 * 1024 * 1024;

export class NbdClient extends EventEmitter<NbdClientEvents> implements Volume {
  readonly exportName: string;
  readonly transmissionFlags: number;
  readonly structuredReplies: boolean;
  /** Negotiated meta context name -> id. */
  readonly metaContexts: ReadonlyMap<string, number>;
  /** As advertised (undefined: the server sent none and protocol defaults apply). */
  readonly blockSize: BlockSizeConstraints | undefined;
  readonly description: string | undefined;
  /** How the connection is secured; undefined in plaintext. */
  readonly tls: ClientTlsInfo | undefined;
  private readonly _size: number;
  private readonly ident: VolumeIdentity;
  private readonly writer: CorkedWriter;
  private readonly reader: ReplyReader;
  private readonly pending = new Map<bigint, Pending>();
  /** Callers waiting for one of the maxInFlight slots; a freed slot passes straight to the first. */
  private readonly waiting: (() => void)[] = [];
  private slotsUsed = 0;
  private readonly maxInFlight: number;
  private readonly maxPayload: number;
  private readonly minBlock: number;
  private nextCookie = 1n;
  private state: 'open' | 'closing' | 'closed' | 'lost' = 'open';
  private failure: LunrigError | undefined;
  private closePromise: Promise<void> | undefined;
  private readonly socketClosed: Promise<void>;
  private readonly drainedWaiters: (() => void)[] = [];

  private constructor(
    private readonly socket: net.Socket,
    queue: SocketReader['queue'],
    hs: HandshakeResult,
    options: NbdClientOptions,
    targetLabel: string,
    tlsInfo: ClientTlsInfo | undefined,
  ) {
    super();
    this.tls = tlsInfo;
    this.exportName = options.exportName;
    this._size = hs.size;
    this.transmissionFlags = hs.transmissionFlags;
    this.structuredReplies = hs.structuredReplies;
    this.metaContexts = hs.metaContexts;
    this.blockSize = hs.blockSize;
    this.description = hs.description;
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 64);
    this.minBlock = hs.blockSize?.minimum ?? C.NBD_DEFAULT_MINIMUM_BLOCK_SIZE;
    const advertisedMax = hs.blockSize?.maximum ?? DEFAULT_MAX_PAYLOAD;
    const max = Math.min(advertisedMax, DEFAULT_MAX_PAYLOAD);
    this.maxPayload = Math.max(this.minBlock, max - (max % this.minBlock));
    this.ident = (hs.description && parseIdentityDescription(hs.description)) || derivedIdentity(targetLabel, hs.canonicalName ?? options.exportName);
    this.writer = new CorkedWriter(socket);
    const table: PendingTable = {
      get: (cookie) => this.pending.get(cookie),
      complete: (p) => this.complete(p as Pending),
    };
    this.reader = new ReplyReader(queue, table);
    this.socketClosed = new Promise((resolve) => socket.once('close', () => resolve()));
    const feed = (): void => {
      try {
        this.reader.feed();
      } catch (err) {
        const msg = err instanceof NbdWireError ? `NBD protocol violation by the server: ${err.message}` : String(err);
        this.lose(new LunrigError('UNREACHABLE', msg, { protocol: true }, { cause: err }));
      }
    };
    socket.on('data', (chunk: Buffer) => {
      queue.push(chunk);
      feed();
    });
    socket.on('error', (err) => this.lose(new LunrigError('UNREACHABLE', `NBD connection failed: ${err.message}`, undefined, { cause: err })));
    socket.on('end', () => this.lose(new LunrigError('UNREACHABLE', 'NBD server closed the connection')));
    socket.on('close', () => this.lose(new LunrigError('UNREACHABLE', 'NBD connection closed')));
    // Bytes that arrived together with the end of the handshake (a reply before any request is a violation).
    if (queue.length > 0) queueMicrotask(feed);
  }

  /** Connect, negotiate and attach an export. */
  static async connect(target: NbdTarget, options: NbdClientOptions): Promise<NbdClient> {
    if (Buffer.byteLength(options.exportName, 'utf8') > C.NBD_MAX_STRING) {
      throw new LunrigError('INVALID_ARGUMENT', `export name longer than ${C.NBD_MAX_STRING} bytes`);
    }
    if (options.tls) checkClientTlsOptions(options.tls);
    const s = await openHandshake(target, options.connectTimeoutMs ?? 10_000, options.tls);
    try {
      const hs = await negotiateExport(s.reader, s.write, s.noZeroes, {
        exportName: options.exportName,
        structuredReplies: options.structuredReplies ?? true,
        metaContexts: options.metaContexts ?? [C.NBD_META_CONTEXT_BASE_ALLOCATION],
      });
      s.reader.detach();
      return new NbdClient(s.socket, s.reader.queue, hs, options, targetLabel(target), s.tls);
    } catch (err) {
      s.socket.destroy();
      throw s.failure(err);
    } finally {
      s.done();
    }
  }

  /** The exports a server offers (NBD_OPT_LIST), on a short-lived connection. */
  static async listExports(target: NbdTarget, options: { connectTimeoutMs?: number; tls?: NbdClientTlsOptions } = {}): Promise<ExportListing[]> {
    if (options.tls) checkClientTlsOptions(options.tls);
    const s = await openHandshake(target, options.connectTimeoutMs ?? 10_000, options.tls);
    try {
      const list = await listExports(s.reader, s.write);
      await abortSession(s.reader, s.write);
      return list;
    } catch (err) {
      throw s.failure(err);
    } finally {
      s.done();
      s.reader.detach();
      s.socket.on('error', () => undefined);
      s.socket.end();
      setTimeout(() => s.socket.destroy(), 1000).unref();
    }
  }

  get size(): number {
    return this._size;
  }

  get readOnly(): boolean {
    return (this.transmissionFlags & C.NBD_FLAG_READ_ONLY) !== 0;
  }

  /** True once close() finished or the connection was lost. */
  get closed(): boolean {
    return this.state === 'closed' || this.state === 'lost';
  }

  /** Requests on the wire plus those waiting for a slot. */
  get inFlight(): number {
    return this.slotsUsed + this.waiting.length;
  }

  identity(): VolumeIdentity {
    return { ...this.ident };
  }

  hasFlag(flag: number): boolean {
    return (this.transmissionFlags & flag) !== 0;
  }

  // --- Volume operations, in the order every layer keeps.

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    this.checkIo(offset, length, 'read');
    if (into && into.length < length) throw new LunrigError('INVALID_ARGUMENT', `read: buffer of ${into.length} bytes is shorter than ${length}`);
    // Structured replies fill the buffer chunk by chunk: start from zeros so a gap can never expose stale memory.
    const out = into ?? (this.structuredReplies ? Buffer.alloc(length) : Buffer.allocUnsafe(length));
    const parts: Promise<void>[] = [];
    for (const [off, len] of pieces(offset, length, this.maxPayload)) {
      const dest = out.subarray(off - offset, off - offset + len);
      parts.push(
        this.submit(C.NBD_CMD_READ, 0, off, len, undefined, dest).then((p) => {
          this.throwIfError(p);
          if (p.covered < len) throw new LunrigError('IO_ERROR', `read: the server's reply covered ${p.covered} of ${len} bytes`);
        }),
      );
    }
    await Promise.all(parts);
    return into ?? out;
  }

  async write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    this.checkIo(offset, data.length, 'write');
    this.checkWritable('write');
    const nativeFua = options?.fua === true && this.hasFlag(C.NBD_FLAG_SEND_FUA);
    const flags = nativeFua ? C.NBD_CMD_FLAG_FUA : 0;
    if (data.length > 0 && data.length <= this.maxPayload) {
      // One request (the common case; a PPRC link's every write): no piece list, no Promise.all.
      this.throwIfError(await this.submit(C.NBD_CMD_WRITE, flags, offset, data.length, data));
      if (options?.fua && !nativeFua) await this.flush();
      return;
    }
    await Promise.all(
      [...pieces(offset, data.length, this.maxPayload)].map(([off, len]) =>
        this.submit(C.NBD_CMD_WRITE, flags, off, len, data.subarray(off - offset, off - offset + len)).then((p) => this.throwIfError(p)),
      ),
    );
    if (options?.fua && !nativeFua) await this.flush();
  }

  async writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    this.checkIo(offset, length, 'writeZeroes');
    this.checkWritable('writeZeroes');
    let flags = options?.noHole ? C.NBD_CMD_FLAG_NO_HOLE : 0;
    if (options?.fastZero) {
      if (!this.hasFlag(C.NBD_FLAG_SEND_FAST_ZERO)) throw new LunrigError('NOT_SUPPORTED', 'writeZeroes: the server offers no fast zeroing');
      flags |= C.NBD_CMD_FLAG_FAST_ZERO;
    }
    await this.zero(offset, length, flags, options?.fua === true);
  }

  async trim(offset: number, length: number, options?: WriteOptions): Promise<void> {
    this.checkIo(offset, length, 'trim');
    this.checkWritable('trim');
    await this.zero(offset, length, 0, options?.fua === true);
  }

  async flush(): Promise<void> {
    this.checkUsable();
    if (!this.hasFlag(C.NBD_FLAG_SEND_FLUSH)) return; // the server says there is nothing to flush
    this.throwIfError(await this.submit(C.NBD_CMD_FLUSH, 0, 0, 0));
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.checkUsable();
    checkRange(offset, length, this._size, 'blockStatus');
    const extents: Extent[] = [];
    if (length === 0) return extents;
    const id = this.metaContexts.get(C.NBD_META_CONTEXT_BASE_ALLOCATION);
    if (id === undefined) return [{ offset, length, kind: 'data' }];
    const end = offset + length;
    let cursor = offset;
    while (cursor < end) {
      const len = Math.min(end - cursor, MAX_EFFECT_LENGTH);
      const p = await this.submit(C.NBD_CMD_BLOCK_STATUS, 0, cursor, len);
      this.throwIfError(p);
      const descriptors = p.blockStatus.get(id);
      if (!descriptors || descriptors.length === 0) throw new LunrigError('IO_ERROR', 'blockStatus: no base:allocation extents in the reply', { protocol: true });
      for (const d of descriptors) {
        if (cursor >= end) break;
        if (d.length === 0) throw new LunrigError('IO_ERROR', 'blockStatus: zero-length extent in the reply', { protocol: true });
        const n = Math.min(d.length, end - cursor);
        pushExtent(extents, cursor, n, extentKind(d.flags));
        cursor += n;
      }
    }
    return extents;
  }

  /** NBD_CMD_CACHE: ask the server to prefetch a range (a hint). */
  async cache(offset: number, length: number): Promise<void> {
    this.checkIo(offset, length, 'cache');
    if (!this.hasFlag(C.NBD_FLAG_SEND_CACHE)) return;
    this.throwIfError(await this.submit(C.NBD_CMD_CACHE, 0, offset, length));
  }

  /** Send any request as is and return the server's answer, errors included (tests, diagnostics). NBD_CMD_DISC resolves once sent. */
  async request(req: RawRequest): Promise<RawReply> {
    this.checkUsable();
    const length = req.length ?? req.data?.length ?? 0;
    if (req.type === C.NBD_CMD_DISC) {
      this.writer.send([encodeRequestHeader({ flags: req.flags ?? 0, type: req.type, cookie: this.nextCookie++, offset: req.offset ?? 0, length })]);
      this.state = 'closing';
      return { errno: 0, message: '', data: undefined, simple: false, chunkTypes: [], blockStatus: new Map() };
    }
    const buffer = req.type === C.NBD_CMD_READ ? Buffer.alloc(length) : undefined;
    const p = await this.submit(req.type, req.flags ?? 0, req.offset ?? 0, length, req.data, buffer);
    return {
      errno: p.error?.errno ?? 0,
      message: p.error?.message ?? '',
      data: p.error ? undefined : (buffer as Buffer | undefined),
      simple: p.simple,
      chunkTypes: p.chunkTypes,
      blockStatus: p.blockStatus,
    };
  }

  /** Soft disconnect: wait for requests in flight, send NBD_CMD_DISC, close. Idempotent. */
  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  /** Drop the connection now; requests in flight fail with CLOSED. */
  destroy(): void {
    if (this.closed) return;
    this.failAll(new LunrigError('CLOSED', 'NBD client destroyed'));
    this.state = 'closed';
    this.socket.destroy();
  }

  private async doClose(): Promise<void> {
    if (this.state === 'open') this.state = 'closing';
    if (this.slotsUsed + this.waiting.length > 0) await new Promise<void>((resolve) => this.drainedWaiters.push(resolve));
    if (this.state === 'closing') {
      this.state = 'closed';
      this.writer.send([encodeRequestHeader({ flags: 0, type: C.NBD_CMD_DISC, cookie: this.nextCookie++, offset: 0, length: 0 })]);
      this.socket.end();
      const timer = setTimeout(() => this.socket.destroy(), 2000);
      await this.socketClosed;
      clearTimeout(timer);
    }
  }

  private async zero(offset: number, length: number, flags: number, fua: boolean): Promise<void> {
    if (!this.hasFlag(C.NBD_FLAG_SEND_WRITE_ZEROES)) {
      const zeros = Buffer.alloc(Math.min(length, this.maxPayload));
      await Promise.all([...pieces(offset, length, zeros.length)].map(([off, len]) => this.write(off, zeros.subarray(0, len))));
      if (fua) await this.flush();
      return;
    }
    const nativeFua = fua && this.hasFlag(C.NBD_FLAG_SEND_FUA);
    const f = flags | (nativeFua ? C.NBD_CMD_FLAG_FUA : 0);
    await Promise.all([...pieces(offset, length, MAX_EFFECT_LENGTH)].map(([off, len]) => this.submit(C.NBD_CMD_WRITE_ZEROES, f, off, len).then((p) => this.throwIfError(p))));
    if (fua && !nativeFua) await this.flush();
  }

  /** Queue a request (waiting for a slot when maxInFlight are out) and resolve with its completed reply. */
  private async submit(type: number, flags: number, offset: number, length: number, data?: Uint8Array, buffer?: Uint8Array): Promise<PendingRequest> {
    if (this.slotsUsed < this.maxInFlight) this.slotsUsed++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve)); // the slot is handed over, already counted
    if (this.state === 'lost' || this.state === 'closed') {
      this.releaseSlot();
      throw this.unusableError();
    }
    const cookie = this.nextCookie++;
    return new Promise<PendingRequest>((resolve, reject) => {
      const p: Pending = {
        cookie,
        type,
        offset,
        length,
        buffer,
        covered: 0,
        error: undefined,
        chunkTypes: [],
        blockStatus: new Map(),
        simple: false,
        resolve,
        reject,
      };
      this.pending.set(cookie, p);
      const header = encodeRequestHeader({ flags, type, cookie, offset, length });
      this.writer.send(data && data.length > 0 ? [header, data] : [header]);
    });
  }

  private complete(p: Pending): void {
    this.pending.delete(p.cookie);
    if (p.error?.errno === C.NBD_ESHUTDOWN && this.state === 'open') {
      // The server is going away: the client MUST soft-disconnect.
      void this.close();
    }
    p.resolve(p);
    this.releaseSlot();
  }

  private releaseSlot(): void {
    const next = this.waiting.shift();
    if (next) return next();
    this.slotsUsed--;
    if (this.slotsUsed === 0) for (const f of this.drainedWaiters.splice(0)) f();
  }

  private lose(err: LunrigError): void {
    if (this.state === 'lost' || this.state === 'closed') {
      if (this.state === 'closed') this.failAll(new LunrigError('CLOSED', 'NBD client closed'));
      return;
    }
    this.state = 'lost';
    this.failure = err;
    this.failAll(err);
    this.socket.destroy();
    this.emit('disconnect', err);
  }

  private failAll(err: LunrigError): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      p.reject(err);
      this.releaseSlot(); // wakes waiters, which then see the failure
    }
    for (const f of this.drainedWaiters.splice(0)) f();
  }

  private throwIfError(p: PendingRequest): void {
    if (!p.error) return;
    const { errno, message } = p.error;
    const what = `${commandName(p.type)} [${p.offset}, +${p.length}) failed: ${errnoName(errno)}`;
    throw new LunrigError(errorCodeForErrno(errno), message ? `${what}: ${message}` : what, { errno });
  }

  private unusableError(): LunrigError {
    return this.state === 'lost' && this.failure ? this.failure : new LunrigError('CLOSED', 'NBD client is closed');
  }

  private checkUsable(): void {
    if (this.state !== 'open') throw this.unusableError();
  }

  private checkIo(offset: number, length: number, what: string): void {
    this.checkUsable();
    checkRange(offset, length, this._size, what);
    if (this.minBlock > 1 && (offset % this.minBlock !== 0 || length % this.minBlock !== 0)) {
      throw new LunrigError('INVALID_ARGUMENT', `${what}: offset and length must be multiples of the server's minimum block size ${this.minBlock}`);
    }
  }

  private checkWritable(what: string): void {
    if (this.readOnly) throw new LunrigError('READ_ONLY', `${what}: export '${this.exportName}' is read-only`);
  }
}

function* pieces(offset: number, length: number, max: number): Generator<[number, number]> {
  if (length === 0) {
    yield [offset, 0];
    return;
  }
  for (let at = 0; at < length; at += max) yield [offset + at, Math.min(max, length - at)];
}

function extentKind(flags: number): ExtentKind {
  // A hole that does not read as zero (e.g. over a backing file) is data as far as a Volume is concerned.
  if (flags & C.NBD_STATE_ZERO) return flags & C.NBD_STATE_HOLE ? 'hole' : 'zero';
  return 'data';
}

function pushExtent(extents: Extent[], offset: number, length: number, kind: ExtentKind): void {
  const prev = extents[extents.length - 1];
  if (prev && prev.kind === kind && prev.offset + prev.length === offset) prev.length += length;
  else extents.push({ offset, length, kind });
}

function targetLabel(t: NbdTarget): string {
  return 'path' in t ? `unix:${t.path}` : `${t.host}:${t.port ?? C.NBD_DEFAULT_PORT}`;
}

function derivedIdentity(target: string, exportName: string): VolumeIdentity {
  const h = createHash('sha256').update(`nbd://${target}/${exportName}`).digest('hex');
  return { name: exportName, volumeId: h.slice(0, 8).toUpperCase(), uniqueId: h.slice(0, 32), serial: h.slice(8, 13).toUpperCase(), lss: 0x10 };
}

function openSocket(target: NbdTarget, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = 'path' in target ? net.connect({ path: target.path }) : net.connect({ host: target.host, port: target.port ?? C.NBD_DEFAULT_PORT });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new LunrigError('UNREACHABLE', `connecting to NBD server ${targetLabel(target)} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.setNoDelay(true);
      resolve(socket);
    });
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(new LunrigError('UNREACHABLE', `cannot connect to NBD server ${targetLabel(target)}: ${err.message}`, undefined, { cause: err }));
    };
    socket.once('error', onError);
  });
}

interface OpenHandshake {
  /** The plain socket, or the TLS socket after STARTTLS. */
  socket: net.Socket;
  reader: SocketReader;
  write: (b: Buffer) => void;
  noZeroes: boolean;
  tls: ClientTlsInfo | undefined;
  /** The error to throw for a failure during the handshake. */
  failure(err: unknown): LunrigError;
  /** Stop the handshake timer. */
  done(): void;
}

/**
 * Connect, read the greeting, send client flags and, with `tls`, run
 * STARTTLS. One timer bounds all of it and what the caller negotiates next;
 * on a failure here the socket is already gone.
 */
async function openHandshake(target: NbdTarget, timeoutMs: number, tlsOptions: NbdClientTlsOptions | undefined): Promise<OpenHandshake> {
  const raw = await openSocket(target, timeoutMs);
  let socket: net.Socket = raw;
  let reader = new SocketReader(raw);
  let timedOut = false;
  const timeout = (): LunrigError => new LunrigError('UNREACHABLE', 'NBD handshake timed out');
  const timer = setTimeout(() => {
    timedOut = true;
    reader.fail(timeout());
    socket.destroy(); // also ends a TLS handshake in progress
  }, timeoutMs);
  const failure = (err: unknown): LunrigError => (timedOut ? timeout() : handshakeError(err));
  try {
    const { noZeroes } = await openSession(reader, (b) => void socket.write(b));
    let tlsInfo: ClientTlsInfo | undefined;
    if (tlsOptions) {
      const up = await startClientTls(raw, reader, tlsOptions, 'host' in target ? target.host : undefined);
      if (up) {
        socket = up.socket;
        reader = up.reader;
        tlsInfo = up.info;
      }
    }
    return {
      socket,
      reader,
      write: (b) => void socket.write(b),
      noZeroes,
      tls: tlsInfo,
      failure,
      done: () => clearTimeout(timer),
    };
  } catch (err) {
    clearTimeout(timer);
    socket.destroy();
    raw.destroy();
    throw failure(err);
  }
}

function handshakeError(err: unknown): LunrigError {
  if (err instanceof LunrigError) return err;
  if (err instanceof NbdWireError) return new LunrigError('UNREACHABLE', `NBD handshake failed: ${err.message}`, { protocol: true }, { cause: err });
  return new LunrigError('INTERNAL', `NBD handshake failed: ${String(err)}`, undefined, { cause: err });
}
