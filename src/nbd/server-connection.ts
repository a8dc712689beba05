/**
 * One client connection: incremental parsing of the handshake and of
 * transmission requests, many requests in flight with replies sent as they
 * complete (out of order), bounded buffering with backpressure, and clean
 * endings. Anything a client sends can at worst end its own connection.
 *
 * STARTTLS swaps the socket for a TLSSocket (tls-server-upgrade.ts) between
 * two option negotiations; parsing, limits and backpressure then run on the
 * TLS socket exactly as on the plain one.
 *
 * READ and WRITE of a plain worker-engine LUN take the fast path
 * (fast-path.ts): data in arena slots, no copies. On such plaintext
 * connections the socket is read with direct reads (direct-read.ts): the
 * connection picks where each read lands, a receive pool it carves chunks
 * from, or the rest of the WRITE payload's slot while one is arriving.
 */
import type { Socket } from 'node:net';
import { ByteQueue, joinChunks } from './byte-queue.js';
import { executeCommand, failureReply, type CommandContext } from './command-executor.js';
import * as C from './constants.js';
import { decodeOptionHeader, encodeGreeting } from './handshake-codec.js';
import { enableDirectReads, type DirectReadSink } from './direct-read.js';
import { copyOut, copyQueueInto, fastExportOf, isSlotData, readReplyFrame, type FastExport } from './fast-path.js';
import { errorReply, readReply, successReply } from './reply-builder.js';
import { decodeRequestHeader, type RequestHeader } from './request-codec.js';
import { validateRequest, type Rejection, type RequestContext } from './request-validation.js';
import { CorkedWriter } from './corked-writer.js';
import { ServerNegotiation, type NegotiatedExport, type OptionResult } from './server-negotiation.js';
import type { ResolvedServerOptions } from './server-options.js';
import { NbdWireError } from './wire.js';
import type { ExportEntry, ExportRequester } from './export-provider.js';
import type { TlsSessionInfo } from './tls-peer.js';
import { upgradeServerSocket } from './tls-server-upgrade.js';
import type { IoSlot } from '../io/slot-arena.js';
import { errnoForError } from './errno-map.js';

/** Reads (READ, BLOCK_STATUS, CACHE) versus writes (WRITE, WRITE_ZEROES, TRIM, FLUSH) for access checks. */
function accessKind(type: number): 'read' | 'write' {
  return type === C.NBD_CMD_READ || type === C.NBD_CMD_BLOCK_STATUS || type === C.NBD_CMD_CACHE ? 'read' : 'write';
}

/** 'tls': STARTTLS acknowledged, TLS handshake in progress. */
export type ConnectionPhase = 'clientFlags' | 'options' | 'tls' | 'transmission' | 'closing';

export interface ConnectionHooks {
  isShuttingDown(): boolean;
  onClose(conn: ServerConnection, reason: string): void;
  /** TLS is up; `session.peer` is the verified client identity. */
  onTls?(conn: ServerConnection, session: TlsSessionInfo): void;
}

export interface ConnectionStats {
  id: number;
  phase: ConnectionPhase;
  exportName: string | undefined;
  inFlight: number;
  outstandingBytes: number;
  /** Most bytes this connection held at once (unparsed input + reserved payloads + unsent replies). */
  peakBufferedBytes: number;
  requests: number;
  /** READs and WRITEs served on the fast path (data in I/O slots, fast-path.ts). */
  fastRequests: number;
  /** Whether WRITE payloads are read straight into their slots (direct-read.ts). */
  directReads: boolean;
  /** The TLS session once STARTTLS succeeded. */
  tls: TlsSessionInfo | undefined;
}

interface PendingOption {
  option: number;
  length: number;
  remaining: number;
  /** Over maxOptionLength: drained, not buffered. */
  drain: boolean;
}

interface PendingWrite {
  req: RequestHeader;
  remaining: number;
  chunks: Buffer[];
  /** Refused already: drop the payload. */
  discard: boolean;
  /** Fast path: the payload goes into this slot, pinned against `fast.budget` until complete. */
  slot: IoSlot | undefined;
  fast: FastExport | undefined;
  /** Payload bytes in the slot so far. */
  filled: number;
}

/** A read reply sent straight from its slot: the slot is freed once the socket is done with it. */
interface PinnedReply {
  slot: IoSlot;
  bytes: number;
  fast: FastExport;
  done: boolean;
}

/**
 * Direct reads land in a receive pool of this size, carved into chunks; a new
 * pool once less than RECV_MIN is left, unless nothing refers to the current
 * one's bytes any more (nothing queued, no payload pending or held by a
 * generic-path WRITE): then it is reused from its start. An idle connection
 * holds at most one pool.
 */
const RECV_POOL = 128 * 1024;
const RECV_MIN = 32 * 1024;
/** After a WRITE payload this large, the next read takes just one request header, so a following large payload lands in its slot whole. */
const HEADER_ONLY_AFTER = 64 * 1024;

/** What a connection serves once in transmission. */
interface Session {
  negotiated: NegotiatedExport;
  entry: ExportEntry;
  requestContext: RequestContext;
  commandContext: CommandContext;
  /** Set when READ/WRITE may take the fast path (checked again per request: `fast.active`). */
  fast: FastExport | undefined;
}

export class ServerConnection {
  private phase: ConnectionPhase = 'clientFlags';
  private readonly queue = new ByteQueue();
  /** The plain socket, then the TLSSocket after STARTTLS. */
  private socket: Socket;
  private writer: CorkedWriter;
  private noZeroes = false;
  private tlsSession: TlsSessionInfo | undefined;
  /** Who this client is, for the export provider (LUN masking); one object, not one per request. */
  private requester: ExportRequester = {};
  private negotiation: ServerNegotiation | undefined;
  private pendingOption: PendingOption | undefined;
  private pendingWrite: PendingWrite | undefined;
  private session: Session | undefined;
  private inFlight = 0;
  private outstandingBytes = 0;
  private requests = 0;
  private fastRequests = 0;
  private directReads = false;
  private peakBufferedBytes = 0;
  /** NBD_CMD_DISC received: no more requests, finish in-flight ones, then close. */
  private disconnecting = false;
  private readEnded = false;
  private shutdownRequested = false;
  private pumping = false;
  private closed = false;
  private closeReason = 'closed';
  private handshakeTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  /** Fast-path read replies the socket has not finished with. */
  private readonly pinnedReplies = new Set<PinnedReply>();
  private pinnedReplyBytes = 0;
  /** Direct reads: the current receive pool and how much of it is handed out. */
  private recvPool: Buffer | undefined;
  private recvAt = 0;
  /** The payload whose slot the next direct read lands in (the kernel may write there until the read after it is set up). */
  private readInto: PendingWrite | undefined;
  /** A payload slot given up while the kernel may still read into it: freed after the next read or at close. */
  private abandoned: PendingWrite | undefined;
  private headerOnlyRead = false;
  /** Generic-path WRITEs in flight whose payload may be receive-pool bytes. */
  private poolHolds = 0;
  private readonly readSink: DirectReadSink = {
    next: () => this.nextReadBuffer(),
    onRead: (n, buffer) => this.onDirectRead(n, buffer),
  };

  private readonly onData = (chunk: Buffer): void => {
    if (this.phase === 'closing' || this.disconnecting) return; // nothing after DISC/ABORT is read
    this.queue.push(chunk);
    this.pump();
  };
  private readonly onEnd = (): void => {
    this.readEnded = true;
    this.pump();
  };
  private readonly onDrain = (): void => this.pump();
  private readonly onError = (err: Error): void => {
    this.closeReason = `socket error: ${err.message}`;
  };
  private readonly onClose = (): void => this.onClosed();

  constructor(
    readonly id: number,
    socket: Socket,
    private readonly options: ResolvedServerOptions,
    private readonly hooks: ConnectionHooks,
  ) {
    this.socket = socket;
    this.writer = new CorkedWriter(socket);
  }

  /** The TLS session (protocol, cipher, verified peer) once STARTTLS succeeded. */
  get tls(): TlsSessionInfo | undefined {
    return this.tlsSession;
  }

  start(): void {
    this.socket.setNoDelay(true); // TCP_NODELAY (spec §2.1); a no-op on unix sockets
    this.attach(this.socket);
    const t = this.options.limits.handshakeTimeoutMs;
    if (t > 0) {
      this.handshakeTimer = setTimeout(() => this.destroy('handshake timeout'), t);
      this.handshakeTimer.unref();
    }
    this.writer.send([encodeGreeting(C.NBD_FLAG_FIXED_NEWSTYLE | C.NBD_FLAG_NO_ZEROES)]);
  }

  /** Server is closing: handshakes end now, transmissions once their in-flight requests are answered. */
  shutdown(): void {
    this.shutdownRequested = true;
    if (this.phase === 'tls') this.destroy('server shutting down');
    else if (this.phase === 'clientFlags' || this.phase === 'options') this.end('server shutting down');
    else this.maybeFinish();
  }

  destroy(reason: string): void {
    if (this.closed) return;
    this.closeReason = reason;
    this.phase = 'closing';
    this.queue.clear();
    this.socket.destroy();
  }

  stats(): ConnectionStats {
    return {
      id: this.id,
      phase: this.phase,
      exportName: this.session?.entry.name,
      inFlight: this.inFlight,
      outstandingBytes: this.outstandingBytes,
      peakBufferedBytes: this.peakBufferedBytes,
      requests: this.requests,
      fastRequests: this.fastRequests,
      directReads: this.directReads,
      tls: this.tlsSession,
    };
  }

  private attach(s: Socket): void {
    s.on('data', this.onData);
    s.on('end', this.onEnd);
    s.on('drain', this.onDrain);
    s.on('error', this.onError);
    s.on('close', this.onClose);
  }

  /** Parse as much as the limits allow, then pause or resume the socket accordingly. */
  private pump(): void {
    // During the TLS handshake the plain socket belongs to TLS: not read, paused or resumed here.
    if (this.pumping || this.closed || this.phase === 'tls') return;
    this.pumping = true;
    try {
      while (this.phase !== 'closing' && !this.blocked() && this.step()) {
        // each step consumed a message or part of a payload
      }
    } catch (err) {
      // A malformed message (or a bug) ends this connection only.
      this.destroy(err instanceof NbdWireError ? `protocol violation: ${err.message}` : `internal error: ${(err as Error).message}`);
    } finally {
      this.pumping = false;
    }
    this.notePeak();
    if (this.closed || this.socket.destroyed || (this.phase as ConnectionPhase) === 'tls') return;
    if (this.phase !== 'closing' && this.blocked() && !this.readEnded) this.socket.pause();
    else this.socket.resume();
    this.maybeFinish();
  }

  private blocked(): boolean {
    const l = this.options.limits;
    if (this.writer.buffered >= l.maxReplyBuffer) return true;
    if (this.phase !== 'transmission' || this.pendingWrite) return false;
    return this.inFlight >= l.maxInFlight || this.outstandingBytes >= l.maxOutstandingBytes;
  }

  /** Handle the next message (or payload part); false when more bytes are needed. */
  private step(): boolean {
    switch (this.phase) {
      case 'clientFlags':
        return this.stepClientFlags();
      case 'options':
        return this.stepOption();
      case 'transmission':
        return this.stepTransmission();
      default:
        return false;
    }
  }

  private stepClientFlags(): boolean {
    if (this.queue.length < C.NBD_CLIENT_FLAGS_SIZE) return false;
    const flags = this.queue.take(C.NBD_CLIENT_FLAGS_SIZE).readUInt32BE(0);
    // We offer FIXED_NEWSTYLE and NO_ZEROES; any other bit is unknown and MUST drop the connection.
    if ((flags & ~(C.NBD_FLAG_C_FIXED_NEWSTYLE | C.NBD_FLAG_C_NO_ZEROES)) !== 0) {
      this.destroy(`unknown client flags 0x${flags.toString(16)}`);
      return false;
    }
    // TLS needs fixed newstyle on both sides; without it the server MUST run NOTLS, which 'require' forbids.
    const fixed = (flags & C.NBD_FLAG_C_FIXED_NEWSTYLE) !== 0;
    const tlsMode = fixed ? (this.options.tls?.mode ?? 'off') : 'off';
    if (!fixed && this.options.tls?.mode === 'require') {
      this.destroy('TLS is required and the client does not speak fixed newstyle');
      return false;
    }
    this.noZeroes = (flags & C.NBD_FLAG_C_NO_ZEROES) !== 0;
    this.negotiation = new ServerNegotiation(this.options, this.noZeroes, this.hooks.isShuttingDown, { mode: tlsMode, session: undefined });
    this.phase = 'options';
    return true;
  }

  private stepOption(): boolean {
    const limits = this.options.limits;
    const p = this.pendingOption;
    if (!p) {
      if (this.queue.length < C.NBD_OPTION_HEADER_SIZE) return false;
      const { option, length } = decodeOptionHeader(this.queue.take(C.NBD_OPTION_HEADER_SIZE));
      if (length > limits.maxOptionDrain) {
        this.destroy(`option ${option} claims ${length} bytes of data`);
        return false;
      }
      this.pendingOption = { option, length, remaining: length, drain: length > limits.maxOptionLength };
      return true;
    }
    if (p.drain) {
      p.remaining -= this.queue.skip(p.remaining);
      if (p.remaining > 0) return false;
      this.pendingOption = undefined;
      this.applyOptionResult(this.negotiation!.tooBig(p.option, p.length));
      return true;
    }
    if (this.queue.length < p.length) return false;
    const data = this.queue.take(p.length);
    this.pendingOption = undefined;
    this.applyOptionResult(this.negotiation!.handle(p.option, data));
    return true;
  }

  private applyOptionResult(result: OptionResult): void {
    const { outcome } = result;
    if (outcome.kind === 'disconnect') {
      this.destroy(outcome.reason);
      return;
    }
    this.writer.send(result.replies);
    if (outcome.kind === 'abort') this.end('NBD_OPT_ABORT');
    else if (outcome.kind === 'transmission') this.enterTransmission(outcome.negotiated);
    else if (outcome.kind === 'starttls') this.startTls();
  }

  /** After STARTTLS's ACK: hand the socket to TLS, then negotiate afresh on the encrypted stream. */
  private startTls(): void {
    const cfg = this.options.tls!; // a 'starttls' outcome only comes when TLS is on
    if (this.queue.length > 0) {
      // A client MUST wait for the ACK; plaintext pipelined behind STARTTLS is how
      // STARTTLS command injection works, so it is refused, never fed to TLS.
      this.destroy('data sent after NBD_OPT_STARTTLS before TLS started');
      return;
    }
    const raw = this.socket;
    this.writer.flush(); // the ACK leaves in plaintext, ahead of any TLS record
    this.negotiation = undefined;
    this.phase = 'tls';
    this.closeReason = 'TLS handshake failed: connection closed'; // unless the handshake says more before 'close'
    raw.off('data', this.onData);
    raw.off('end', this.onEnd);
    raw.off('drain', this.onDrain);
    // 'close' stays on the plain socket: a failed handshake ends there. Its errors now also surface through TLS.
    upgradeServerSocket(raw, cfg).then(
      ({ socket, session }) => {
        if (this.closed || this.phase !== 'tls') {
          socket.destroy();
          return;
        }
        this.socket = socket;
        this.writer = new CorkedWriter(socket);
        this.tlsSession = session;
        this.requester = { peer: session.peer };
        this.closeReason = 'closed';
        this.attach(socket);
        this.negotiation = new ServerNegotiation(this.options, this.noZeroes, this.hooks.isShuttingDown, { mode: cfg.mode, session });
        this.phase = 'options';
        this.hooks.onTls?.(this, session);
        if (this.shutdownRequested) this.end('server shutting down');
        else this.pump();
      },
      (err: Error) => {
        // The upgrade destroyed the socket and 'close' finishes the connection; keep an earlier reason (timeout, shutdown).
        if (this.phase === 'tls') this.closeReason = err.message;
      },
    );
  }

  private enterTransmission(negotiated: NegotiatedExport): void {
    clearTimeout(this.handshakeTimer);
    this.negotiation = undefined;
    this.phase = 'transmission';
    const o = this.options;
    // Plaintext only: TLS copies every byte through OpenSSL anyway.
    const fast = o.fastPath && this.tlsSession === undefined ? fastExportOf(negotiated.entry.volume) : undefined;
    this.session = {
      negotiated,
      entry: negotiated.entry,
      requestContext: {
        size: negotiated.size,
        transmissionFlags: negotiated.transmissionFlags,
        structuredReplies: negotiated.structuredReplies,
        hasMetaContext: negotiated.metaContexts.length > 0,
        blockSize: o.blockSize,
      },
      commandContext: {
        volume: negotiated.entry.volume,
        structuredReplies: negotiated.structuredReplies,
        metaContexts: negotiated.metaContexts,
        // A fast-path export answers every READ with one data chunk, also when it falls back
        // (no free slot, a layer stacked): the reply shape does not depend on load.
        sparseReads: o.sparseReads && !fast,
        sparseReadMinLength: o.sparseReadMinLength,
      },
      fast,
    };
    // Reached from a 'data' handler with the stream's buffer empty: the switch loses nothing.
    if (fast && o.directReads) this.directReads = enableDirectReads(this.socket, this.readSink);
  }

  private stepTransmission(): boolean {
    const w = this.pendingWrite;
    if (w) return this.consumePayload(w);
    if (this.queue.length < C.NBD_REQUEST_SIZE) return false;
    // A bad magic means we lost framing: there is no cookie to answer, so disconnect.
    const req = decodeRequestHeader(this.queue.take(C.NBD_REQUEST_SIZE));
    this.requests++;
    this.handleRequest(req);
    return true;
  }

  private handleRequest(req: RequestHeader): void {
    const session = this.session!;
    if (req.type === C.NBD_CMD_DISC) {
      this.disconnecting = true;
      this.queue.clear();
      return;
    }
    const rejection = this.rejection(req, session);
    if (req.type === C.NBD_CMD_WRITE) {
      if (rejection) {
        this.reply(errorReply(session.negotiated.structuredReplies, req.cookie, rejection.errno, rejection.message));
        if (req.length > this.options.limits.maxWriteDrain) this.end(`WRITE payload of ${req.length} bytes`);
        else this.pendingWrite = { req, remaining: req.length, chunks: [], discard: true, slot: undefined, fast: undefined, filled: 0 };
        return;
      }
      this.outstandingBytes += req.length; // reserved until the reply is queued
      const fast = this.fastFor(req, session);
      const slot = fast ? this.payloadSlot(fast, req.length) : undefined;
      this.pendingWrite = { req, remaining: req.length, chunks: [], discard: false, slot, fast: slot ? fast : undefined, filled: 0 };
      this.headerOnlyRead = slot !== undefined && req.length >= HEADER_ONLY_AFTER;
      return;
    }
    this.headerOnlyRead = false;
    if (rejection) {
      this.reply(errorReply(session.negotiated.structuredReplies, req.cookie, rejection.errno, rejection.message));
      return;
    }
    if (req.type === C.NBD_CMD_READ) {
      const fast = this.fastFor(req, session);
      const slot = fast?.arena.tryAcquire(req.length);
      if (slot) this.fastRead(fast!, req, slot);
      else this.dispatch(req, undefined, req.length);
      return;
    }
    this.dispatch(req, undefined, 0);
  }

  /** The fast path for a validated READ or WRITE, when its export is a plain worker-engine LUN right now. */
  private fastFor(req: RequestHeader, session: Session): FastExport | undefined {
    const fast = session.fast;
    return fast && req.length > 0 && fast.active ? fast : undefined;
  }

  /** A slot for a WRITE payload about to arrive, pinned (the client decides when it is filled); none: generic path. */
  private payloadSlot(fast: FastExport, length: number): IoSlot | undefined {
    if (!fast.budget.tryPin(length)) return undefined;
    const slot = fast.arena.tryAcquire(length);
    if (!slot) fast.budget.unpin(length);
    return slot;
  }

  private rejection(req: RequestHeader, session: Session): Rejection | undefined {
    if (this.shutdownRequested) return { errno: C.NBD_ESHUTDOWN, message: 'server is shutting down' };
    if (!this.exportStillOffered(session)) return { errno: C.NBD_ESHUTDOWN, message: `export '${session.entry.name}' is no longer offered` };
    const invalid = validateRequest(req, session.requestContext);
    if (invalid || !session.entry.access) return invalid;
    // Reservations (and the like): the export decides per request, keyed by who this session is.
    const denied = session.entry.access(accessKind(req.type));
    return denied ? { errno: errnoForError(denied, { isWrite: accessKind(req.type) === 'write' }), message: denied.message } : undefined;
  }

  /** The export may have been removed or replaced since the handshake. */
  private exportStillOffered(session: Session): boolean {
    try {
      return this.options.exports.get(session.entry.name, this.requester)?.volume === session.entry.volume;
    } catch {
      return false;
    }
  }

  private consumePayload(w: PendingWrite): boolean {
    if (this.queue.length === 0 && w.remaining > 0) return false;
    if (w.slot) {
      const n = w.remaining > 0 ? copyQueueInto(this.queue, w.slot.data, w.filled, w.remaining) : 0;
      w.filled += n;
      w.remaining -= n;
      if (w.remaining > 0) return true;
      this.pendingWrite = undefined;
      w.fast!.budget.unpin(w.req.length); // complete: from here on only the I/O workers hold the slot
      this.fastWrite(w.fast!, w.req, w.slot);
      return true;
    }
    if (w.discard) w.remaining -= this.queue.skip(w.remaining);
    else {
      for (const c of this.queue.takeChunks(w.remaining)) {
        w.chunks.push(c);
        w.remaining -= c.length;
      }
    }
    if (w.remaining > 0) return true;
    this.pendingWrite = undefined;
    if (w.discard) return true;
    // The payload may be receive-pool bytes (direct reads): the pool is not reused while the write holds them.
    this.poolHolds++;
    this.dispatch(w.req, joinChunks(w.chunks, w.req.length), w.req.length, true, () => this.poolHolds--);
    return true;
  }

  /** Run a validated request; `reserved` bytes count against maxOutstandingBytes until its reply is queued. */
  private dispatch(req: RequestHeader, payload: Buffer | undefined, reserved: number, alreadyReserved = false, settled?: () => void): void {
    const session = this.session!;
    this.inFlight++;
    if (!alreadyReserved) this.outstandingBytes += reserved;
    const done = (replies: Buffer[]): void => {
      settled?.();
      this.inFlight--;
      this.outstandingBytes -= reserved;
      this.reply(replies);
      this.pump();
    };
    executeCommand(req, payload, session.commandContext).then(done, (err: unknown) => {
      // executeCommand does not throw; this is a last line of defence.
      done(errorReply(session.negotiated.structuredReplies, req.cookie, C.NBD_EIO, String(err)));
    });
  }

  /** WRITE whose payload is in `slot`: the LUN writes it from there. */
  private fastWrite(fast: FastExport, req: RequestHeader, slot: IoSlot): void {
    const length = req.length;
    if (!fast.active) {
      // A layer was stacked while the payload arrived: it gets the generic path and its own copy.
      const payload = copyOut(slot, length);
      slot.release();
      this.dispatch(req, payload, length, true);
      return;
    }
    this.inFlight++;
    this.fastRequests++;
    const done = (replies: Buffer[]): void => {
      slot.release();
      this.inFlight--;
      this.outstandingBytes -= length;
      this.reply(replies);
      this.pump();
    };
    const data = length === slot.capacity ? slot.data : slot.data.subarray(0, length);
    fast.volume.write(req.offset, data, { fua: (req.flags & C.NBD_CMD_FLAG_FUA) !== 0 }).then(
      () => done(successReply(req.cookie)),
      (err: unknown) => done(failureReply(req, err, this.session!.negotiated.structuredReplies)),
    );
  }

  /** READ into `slot`; the reply leaves from the slot (header in its header room). */
  private fastRead(fast: FastExport, req: RequestHeader, slot: IoSlot): void {
    const length = req.length;
    const structured = this.session!.negotiated.structuredReplies;
    this.inFlight++;
    this.fastRequests++;
    this.outstandingBytes += length;
    fast.volume.read(req.offset, length, slot.data).then(
      (data) => {
        this.inFlight--;
        this.outstandingBytes -= length;
        if (this.closed) slot.release();
        else if (isSlotData(data, slot)) this.replyFromSlot(fast, req, slot, structured);
        else {
          // Not read into the slot (a layer stacked meanwhile answered with its own buffer).
          slot.release();
          this.reply(readReply(structured, req.cookie, req.offset, length, data));
        }
        this.pump();
      },
      (err: unknown) => {
        slot.release();
        this.inFlight--;
        this.outstandingBytes -= length;
        this.reply(failureReply(req, err, structured));
        this.pump();
      },
    );
  }

  /**
   * Send header + data from the slot, freeing it once the socket is done. A
   * client slow to take its replies could hold slots other connections need:
   * past this connection's pin limit or the arena's budget the data is copied
   * out and the slot freed at once.
   */
  private replyFromSlot(fast: FastExport, req: RequestHeader, slot: IoSlot, structured: boolean): void {
    const length = req.length;
    const pin = this.pinnedReplyBytes === 0 || this.pinnedReplyBytes + length <= fast.budget.perConnection;
    if (pin && fast.budget.tryPin(length)) {
      const frame = readReplyFrame(slot, structured, req.cookie, req.offset, length);
      const p: PinnedReply = { slot, bytes: length, fast, done: false };
      this.pinnedReplies.add(p);
      this.pinnedReplyBytes += length;
      if (!this.writer.sendOwned(frame, () => this.unpinReply(p))) this.unpinReply(p);
      this.notePeak();
      return;
    }
    const data = copyOut(slot, length);
    slot.release();
    this.reply(readReply(structured, req.cookie, req.offset, length, data));
  }

  private unpinReply(p: PinnedReply): void {
    if (p.done) return;
    p.done = true;
    this.pinnedReplies.delete(p);
    this.pinnedReplyBytes -= p.bytes;
    p.fast.budget.unpin(p.bytes);
    p.slot.release();
  }

  /** Direct reads: the rest of the arriving payload's slot when nothing else is queued, else receive-pool space. */
  private nextReadBuffer(): Uint8Array {
    this.releaseAbandoned();
    const w = this.pendingWrite;
    if (w?.slot && w.remaining > 0 && this.queue.length === 0 && this.phase === 'transmission' && !this.disconnecting) {
      this.readInto = w;
      return w.slot.data.subarray(w.filled, w.filled + w.remaining);
    }
    this.readInto = undefined;
    let pool = this.recvPool;
    // Nothing refers to the pool's bytes any more: reuse it from its start. A new pool per 128 KiB of
    // requests made V8 run a full mark-compact every ~200 ms at 10k writes/s (external memory), p99 x2.
    if (pool && this.queue.length === 0 && !this.pendingWrite && this.poolHolds === 0 && this.phase === 'transmission') this.recvAt = 0;
    if (!pool || pool.length - this.recvAt < RECV_MIN) {
      pool = this.recvPool = Buffer.allocUnsafeSlow(RECV_POOL);
      this.recvAt = 0;
    }
    const want = this.headerOnlyRead && this.queue.length < C.NBD_REQUEST_SIZE ? C.NBD_REQUEST_SIZE - this.queue.length : pool.length - this.recvAt;
    return pool.subarray(this.recvAt, this.recvAt + want);
  }

  private onDirectRead(n: number, buffer: Uint8Array): void {
    const w = this.readInto;
    if (!w) {
      // Receive-pool space: the chunk stays valid while queued (the pool is reused only once nothing is queued or held), so it is queued without a copy.
      this.recvAt += n;
      this.onData(buffer.subarray(0, n) as Buffer);
      return;
    }
    this.readInto = undefined;
    if (w !== this.pendingWrite || this.phase === 'closing') return; // given up meanwhile: the bytes are dropped
    w.filled += n;
    w.remaining -= n;
    this.pump();
  }

  /** Give up an unfinished fast-path payload (connection ending): unpin it, free its slot once no read can land there. */
  private dropPendingWrite(): void {
    const w = this.pendingWrite;
    this.pendingWrite = undefined;
    if (!w?.slot) return;
    w.fast!.budget.unpin(w.req.length);
    if (this.readInto === w && !this.closed) {
      this.abandoned = w;
      return;
    }
    w.slot.release();
  }

  private releaseAbandoned(): void {
    const a = this.abandoned;
    if (!a) return;
    this.abandoned = undefined;
    a.slot!.release();
  }

  private reply(buffers: Buffer[]): void {
    if (this.closed) return;
    this.writer.send(buffers);
    this.notePeak();
  }

  /** End the connection once nothing is left to answer. */
  private maybeFinish(): void {
    if (this.closed || this.phase === 'closing') return;
    if (this.phase === 'transmission') {
      const stop = this.disconnecting || this.readEnded || this.shutdownRequested;
      if (stop && this.inFlight === 0) {
        if (this.pendingWrite && this.readEnded) this.dropPendingWrite(); // truncated payload: nothing to answer
        if (!this.pendingWrite || this.shutdownRequested) this.end(this.disconnecting ? 'NBD_CMD_DISC' : this.readEnded ? 'client closed' : 'server shutting down');
      }
    } else if (this.readEnded) {
      this.end('client closed during handshake');
    }
  }

  /** Flush what is queued, then close; destroy if the peer does not close its side in time. */
  private end(reason: string): void {
    if (this.closed || this.phase === 'closing') return;
    this.closeReason = reason;
    this.phase = 'closing';
    this.queue.clear();
    this.socket.resume(); // keep reading (and dropping) so we see the peer's FIN
    this.socket.end();
    this.lingerTimer = setTimeout(() => this.socket.destroy(), this.options.limits.closeGraceMs);
    this.lingerTimer.unref();
  }

  private notePeak(): void {
    const held = this.queue.length + this.outstandingBytes + this.writer.buffered;
    if (held > this.peakBufferedBytes) this.peakBufferedBytes = held;
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.phase = 'closing';
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.lingerTimer);
    this.queue.clear();
    // The handle is closed: no read can land in a slot any more, and the socket holds no reply.
    this.dropPendingWrite();
    this.readInto = undefined;
    this.releaseAbandoned();
    for (const p of [...this.pinnedReplies]) this.unpinReply(p);
    this.hooks.onClose(this, this.closeReason);
  }
}
