/** What a selector and the statistics need to know about one I/O. */

export type IoKind = 'read' | 'write' | 'writeZeroes' | 'trim' | 'flush' | 'blockStatus';

export interface IoDescriptor {
  kind: IoKind;
  offset: number;
  length: number;
  /** Data bytes moved (read/write length, 0 otherwise): what least-blocks and service-time weigh. */
  bytes: number;
}

export function describeIo(kind: IoKind, offset: number, length: number): IoDescriptor {
  return { kind, offset, length, bytes: kind === 'read' || kind === 'write' ? length : 0 };
}

/** HDLM's "sequential with the I/O issued immediately beforehand" (spec §1.3, an [E] definition): the next byte. */
export function isSequential(prev: IoDescriptor | undefined, io: IoDescriptor): boolean {
  return prev !== undefined && (io.kind === 'read' || io.kind === 'write') && io.offset === prev.offset + prev.length;
}
