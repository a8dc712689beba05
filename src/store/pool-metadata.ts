/**
 * The pool's metadata file (pool.json): its schema, validation and layout on
 * disk. Only src/store/persist.ts writes it.
 */
import path from 'node:path';
import { LunrigError } from '../errors.js';
import type { PoolRecord } from './pool-schema.js';
import { TiB } from '../util/size.js';

export const POOL_FORMAT = 'lunrig-pool';
export const POOL_FORMAT_VERSION = 1;
export type { LunRecord, PoolRecord } from './pool-schema.js';
export const METADATA_FILE = 'pool.json';
export const LOCK_FILE = 'lock';
export const LUNS_DIR = 'luns';
/** 1 TiB segments: under ext4's 16 TiB - 4 KiB file limit, and few files for ordinary LUNs. */
export const DEFAULT_SEGMENT_SIZE = TiB;

export async function validatePoolRecord(value: unknown, file: string): Promise<PoolRecord> {
  const { firstViolation } = await import('./pool-schema.js');
  const violation = firstViolation(value);
  if (violation !== undefined) {
    throw new LunrigError('POOL_CORRUPT', `${file} does not describe a lunrig pool (${violation})`, { file });
  }
  const record = value as PoolRecord;
  const names = new Set<string>();
  const slots = new Set<string>();
  for (const lun of record.luns) {
    const slot = `${lun.lss}/${lun.volumeNumber}`;
    if (names.has(lun.name) || slots.has(slot)) throw new LunrigError('POOL_CORRUPT', `${file} lists LUN '${lun.name}' or volume ${slot} twice`, { file });
    names.add(lun.name);
    slots.add(slot);
  }
  return record;
}

export function lunDir(poolDir: string, uniqueId: string): string {
  return path.join(poolDir, LUNS_DIR, uniqueId);
}

/** Segment file paths and sizes for a LUN of `size` bytes. */
export function segmentLayout(poolDir: string, uniqueId: string, size: number, segmentSize: number): Array<{ path: string; size: number }> {
  const count = Math.max(1, Math.ceil(size / segmentSize));
  const dir = lunDir(poolDir, uniqueId);
  return Array.from({ length: count }, (_, i) => ({
    path: path.join(dir, `segment-${String(i).padStart(4, '0')}.img`),
    size: Math.min(segmentSize, size - i * segmentSize),
  }));
}
