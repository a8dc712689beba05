import { LunrigError } from '../errors.js';
import * as C from './constants.js';
import type { ExportProvider } from './export-provider.js';
import type { BlockSizeConstraints } from './option-data-codec.js';
import { resolveServerTls, type NbdServerTlsOptions, type ResolvedServerTls } from './tls-options.js';

/** Bounds that keep one client from hurting the server or other clients. */
export interface ServerLimits {
  /** Largest option payload buffered; longer known options are drained and answered NBD_REP_ERR_TOO_BIG. */
  maxOptionLength: number;
  /** Longest option payload drained at all; beyond it the client is treated as a DoS and disconnected. */
  maxOptionDrain: number;
  /** Bytes of write payload plus pending read data one connection may hold before the server stops reading from it. */
  maxOutstandingBytes: number;
  /** Requests in flight per connection before the server stops reading from it. */
  maxInFlight: number;
  /** Reply bytes queued on the socket (client not reading) before the server stops reading from it. */
  maxReplyBuffer: number;
  /** Oversize WRITE payloads up to this are drained and refused with EINVAL; larger ones end the connection. */
  maxWriteDrain: number;
  /** Concurrent connections; more are refused at accept. */
  maxConnections: number;
  /** Time a client has to finish the handshake (0: no limit). */
  handshakeTimeoutMs: number;
  /** Time close() lets in-flight requests finish before it drops connections. */
  closeGraceMs: number;
}

export const DEFAULT_LIMITS: Readonly<ServerLimits> = {
  maxOptionLength: 64 * 1024,
  maxOptionDrain: 16 * 1024 * 1024,
  maxOutstandingBytes: 64 * 1024 * 1024,
  maxInFlight: 256,
  maxReplyBuffer: 16 * 1024 * 1024,
  maxWriteDrain: 64 * 1024 * 1024,
  maxConnections: 1024,
  handshakeTimeoutMs: 30_000,
  closeGraceMs: 5_000,
};

/** Advertised in NBD_INFO_BLOCK_SIZE: byte-granular, 4 KiB preferred, the portable 32 MiB payload limit. */
export const DEFAULT_BLOCK_SIZE: Readonly<BlockSizeConstraints> = {
  minimum: C.NBD_DEFAULT_MINIMUM_BLOCK_SIZE,
  preferred: C.NBD_DEFAULT_PREFERRED_BLOCK_SIZE,
  maximum: C.NBD_DEFAULT_MAXIMUM_PAYLOAD,
};

export interface NbdServerOptions {
  exports: ExportProvider;
  /** Export served when a client asks for the empty ("default") name. */
  defaultExport?: string;
  blockSize?: Partial<BlockSizeConstraints>;
  limits?: Partial<ServerLimits>;
  /**
   * With structured replies, describe holes and zero extents of a read as
   * NBD_REPLY_TYPE_OFFSET_HOLE (asks the volume's blockStatus first). Reads
   * shorter than `sparseReadMinLength` (default 64 KiB) always go as one data chunk.
   * Reads on the fast path always go as one data chunk: the extra blockStatus
   * round trip cost more than the saved bytes, and clients that care about
   * holes (nbdcopy, qemu-img) ask BLOCK_STATUS themselves.
   */
  sparseReads?: boolean;
  sparseReadMinLength?: number;
  /**
   * Serve READ and WRITE of exports whose volume is a LUN on the worker I/O
   * engine, with no copy-service layer stacked, through the engine's slot
   * arena without copying (fast-path.ts); plaintext connections only. Default true.
   */
  fastPath?: boolean;
  /**
   * On fast-path connections, let the kernel read WRITE payloads straight
   * into their slots (direct-read.ts, which uses a Node internal and falls
   * back by itself when Node changes). Default true.
   */
  directReads?: boolean;
  /** STARTTLS with X.509 and/or PSK (tls-options.ts); absent: TLS off. */
  tls?: NbdServerTlsOptions;
}

export interface ResolvedServerOptions {
  exports: ExportProvider;
  defaultExport: string | undefined;
  blockSize: BlockSizeConstraints;
  limits: ServerLimits;
  sparseReads: boolean;
  sparseReadMinLength: number;
  fastPath: boolean;
  directReads: boolean;
  /** Undefined when TLS is off. */
  tls: ResolvedServerTls | undefined;
}

const isPow2 = (n: number): boolean => Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0;

/** Fill defaults and check the block-size rules of spec/nbd.md §2.6. */
export function resolveServerOptions(o: NbdServerOptions): ResolvedServerOptions {
  const blockSize = { ...DEFAULT_BLOCK_SIZE, ...o.blockSize };
  const { minimum, preferred, maximum } = blockSize;
  if (!isPow2(minimum) || minimum > C.NBD_MAX_MINIMUM_BLOCK_SIZE) throw new LunrigError('INVALID_CONFIG', `minimum block size must be a power of two <= 64 KiB, got ${minimum}`);
  if (!isPow2(preferred) || preferred < Math.max(minimum, 512)) throw new LunrigError('INVALID_CONFIG', `preferred block size must be a power of two >= max(minimum, 512), got ${preferred}`);
  if (!Number.isSafeInteger(maximum) || maximum < preferred || maximum > 0xffffffff || (maximum !== 0xffffffff && maximum % minimum !== 0)) {
    throw new LunrigError('INVALID_CONFIG', `maximum payload must be >= preferred and a multiple of the minimum, got ${maximum}`);
  }
  return {
    exports: o.exports,
    defaultExport: o.defaultExport,
    blockSize,
    limits: { ...DEFAULT_LIMITS, ...o.limits },
    sparseReads: o.sparseReads ?? true,
    sparseReadMinLength: o.sparseReadMinLength ?? 64 * 1024,
    fastPath: o.fastPath ?? true,
    directReads: o.directReads ?? true,
    tls: resolveServerTls(o.tls),
  };
}
