/**
 * One client connection: incremental parsing of the handshake and of
 * transmission requests, many requests in flight with replies sent as they
 * complete (out of order), bounded buffering with backpressure, and clean
 * endings. Anything a client sends can at worst end its own connection.
 *
 * STARTTLS swaps the socket for a TLSSocket (tls-server-upgrade.ts) between
 * two option negotiations; parsing, limits and backpressure then run on the
 * TLS socket exactly as on the plain one.
 */
import type { Socket } from 'node:net';
import { ByteQueue, joinChunks } from './byte-queue.js';
import { executeCommand, type CommandContext } from './command-executor.js';
import * as C from './constants.js';
import { decodeOptionHeader, encodeGreeting } from './handshake-codec.js';
import { errorReply } from './reply-builder.js';
import { decodeRequestHeader, type RequestHeader } from './request-codec.js';
import { validateRequest, type Rejection, type RequestContext } from './request-validation.js';
import { CorkedWriter } from './corked-writer.js';
import { ServerNegotiation, type NegotiatedExport, type OptionResult } from './server-negotiation.js';
import type { ResolvedServerOptions } from './server-options.js';
import { NbdWireError } from './wire.js';
import type { ExportEntry } from './export-provider.js';
import type { TlsSessionInfo } from './tls-peer.js';
import { upgradeServerSocket } from './tls-server-upgrade.js';

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
}

/** What a connection serves once in transmission. */
interface Session {
  negotiated: NegotiatedExport;
  entry: ExportEntry;
  requestContext: RequestContext;
  commandContext: CommandContext;
}

export class ServerConnection {
  private phase: ConnectionPhase = 'clientFlags';
  private readonly queue = new ByteQueue();
  /** The plain socket, then the TLSSocket after STARTTLS. */
  private socket: Socket;
  private writer: CorkedWriter;
  private noZeroes = false;
  private tlsSession: TlsSessionInfo | undefined;
  private negotiation: ServerNegotiation | undefined;
  private pendingOption: PendingOption | undefined;
  private pendingWrite: PendingWrite | undefined;
  private session: Session | undefined;
  private inFlight = 0;
  private outstandingBytes = 0;
  private requests = 0;
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
        sparseReads: o.sparseReads,
        sparseReadMinLength: o.sparseReadMinLength,
      },
    };
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
        else this.pendingWrite = { req, remaining: req.length, chunks: [], discard: true };
        return;
      }
      this.outstandingBytes += req.length; // reserved until the reply is queued
      this.pendingWrite = { req, remaining: req.length, chunks: [], discard: false };
      return;
    }
    if (rejection) {
      this.reply(errorReply(session.negotiated.structuredReplies, req.cookie, rejection.errno, rejection.message));
      return;
    }
    this.dispatch(req, undefined, req.type === C.NBD_CMD_READ ? req.length : 0);
  }

  private rejection(req: RequestHeader, session: Session): Rejection | undefined {
    if (this.shutdownRequested) return { errno: C.NBD_ESHUTDOWN, message: 'server is shutting down' };
    if (!this.exportStillOffered(session)) return { errno: C.NBD_ESHUTDOWN, message: `export '${session.entry.name}' is no longer offered` };
    return validateRequest(req, session.requestContext);
  }

  /** The export may have been removed or replaced since the handshake. */
  private exportStillOffered(session: Session): boolean {
    try {
      return this.options.exports.get(session.entry.name)?.volume === session.entry.volume;
    } catch {
      return false;
    }
  }

  private consumePayload(w: PendingWrite): boolean {
    if (this.queue.length === 0 && w.remaining > 0) return false;
    if (w.discard) w.remaining -= this.queue.skip(w.remaining);
    else {
      for (const c of this.queue.takeChunks(w.remaining)) {
        w.chunks.push(c);
        w.remaining -= c.length;
      }
    }
    if (w.remaining > 0) return true;
    this.pendingWrite = undefined;
    if (!w.discard) this.dispatch(w.req, joinChunks(w.chunks, w.req.length), w.req.length, true);
    return true;
  }

  /** Run a validated request; `reserved` bytes count against maxOutstandingBytes until its reply is queued. */
  private dispatch(req: RequestHeader, payload: Buffer | undefined, reserved: number, alreadyReserved = false): void {
    const session = this.session!;
    this.inFlight++;
    if (!alreadyReserved) this.outstandingBytes += reserved;
    const done = (replies: Buffer[]): void => {
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
        if (this.pendingWrite && this.readEnded) this.pendingWrite = undefined; // truncated payload: nothing to answer
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
    this.pendingWrite = undefined;
    this.hooks.onClose(this, this.closeReason);
  }
}
