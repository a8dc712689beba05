/**
 * The pool's metadata file (pool.json): its schema, validation and layout on
 * disk. Only src/store/persist.ts writes it.
 */
import path from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { LunrigError } from '../errors.js';
import { TiB } from '../util/size.js';

export const POOL_FORMAT = 'lunrig-pool';
export const POOL_FORMAT_VERSION = 1;
export const METADATA_FILE = 'pool.json';
export const LOCK_FILE = 'lock';
export const LUNS_DIR = 'luns';
/** 1 TiB segments: under ext4's 16 TiB - 4 KiB file limit, and few files for ordinary LUNs. */
export const DEFAULT_SEGMENT_SIZE = TiB;

const LunRecordSchema = Type.Object({
  name: Type.String(),
  size: Type.Integer({ minimum: 512 }),
  lss: Type.Integer({ minimum: 0x10, maximum: 0x1f }),
  volumeNumber: Type.Integer({ minimum: 0, maximum: 255 }),
  uniqueId: Type.String({ pattern: '^[0-9a-f]{32}$' }),
  readOnly: Type.Boolean(),
  createdAt: Type.String(),
});

const PoolRecordSchema = Type.Object({
  format: Type.Literal(POOL_FORMAT),
  version: Type.Literal(POOL_FORMAT_VERSION),
  serial: Type.String({ pattern: '^[0-9A-Z]{5}$' }),
  poolId: Type.String({ pattern: '^[0-9a-f]{12}$' }),
  segmentSize: Type.Integer({ minimum: 1048576 }),
  nextSequence: Type.Integer({ minimum: 1 }),
  createdAt: Type.String(),
  luns: Type.Array(LunRecordSchema),
});

export type LunRecord = Static<typeof LunRecordSchema>;
export type PoolRecord = Static<typeof PoolRecordSchema>;

export function validatePoolRecord(value: unknown, file: string): PoolRecord {
  if (!Value.Check(PoolRecordSchema, value)) {
    const first = Value.Errors(PoolRecordSchema, value).First();
    const where = first ? `${first.path || '/'}: ${first.message}` : 'unknown';
    throw new LunrigError('POOL_CORRUPT', `${file} does not describe a lunrig pool (${where})`, { file });
  }
  const names = new Set<string>();
  const slots = new Set<string>();
  for (const lun of value.luns) {
    const slot = `${lun.lss}/${lun.volumeNumber}`;
    if (names.has(lun.name) || slots.has(slot)) throw new LunrigError('POOL_CORRUPT', `${file} lists LUN '${lun.name}' or volume ${slot} twice`, { file });
    names.add(lun.name);
    slots.add(slot);
  }
  return value;
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
