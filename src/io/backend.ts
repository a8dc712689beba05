import type { Extent } from '../volume/volume.js';

/**
 * Where a LUN's bytes live. A LUN is one or more sparse segment files: segment i
 * holds bytes [i * segmentSize, (i + 1) * segmentSize). Segmenting keeps a
 * 16 TiB+ LUN possible on filesystems whose file size limit is lower (ext4:
 * 16 TiB - 4 KiB). The store creates and sizes the files; a backend only opens them.
 */
export interface LunBackendSpec {
  segments: string[];
  segmentSize: number;
  size: number;
  readOnly: boolean;
}

export interface QueueStats {
  inFlight: number;
  reads: number;
  writes: number;
  bytesRead: number;
  bytesWritten: number;
  flushes: number;
  trims: number;
  zeroes: number;
  errors: number;
}

/**
 * The I/O queue of one LUN. Ranges arrive validated (inside [0, size)); the
 * backend does no range checking of its own beyond what safety needs.
 * Ordering: a read issued after a write resolved sees that write. `fua` and
 * `flush` resolve only when the data is durable (fdatasync or equivalent).
 */
export interface LunBackend {
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  write(offset: number, data: Uint8Array, fua: boolean): Promise<void>;
  writeZeroes(offset: number, length: number, options: { noHole: boolean; fua: boolean }): Promise<void>;
  trim(offset: number, length: number, fua: boolean): Promise<void>;
  flush(): Promise<void>;
  blockStatus(offset: number, length: number): Promise<Extent[]>;
  /** Adopt a grown spec (larger size, maybe more segments) after the store extended the files. */
  resize(spec: LunBackendSpec): Promise<void>;
  stats(): QueueStats;
  /** Wait for in-flight requests, then release the files. Does not flush. */
  close(): Promise<void>;
}

/** Opens LUN backends; one engine serves a whole pool (shared workers). */
export interface IoEngine {
  readonly name: string;
  open(spec: LunBackendSpec): Promise<LunBackend>;
  close(): Promise<void>;
}

export function emptyStats(): QueueStats {
  return { inFlight: 0, reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, flushes: 0, trims: 0, zeroes: 0, errors: 0 };
}
