/**
 * Schema of pool.json. Loaded on demand by validatePoolRecord: the schema
 * library costs a noticeable part of start-up, and only Pool.open needs it.
 */
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';

import { POOL_FORMAT, POOL_FORMAT_VERSION } from './pool-metadata.js';

export const LunRecordSchema = Type.Object({
  name: Type.String(),
  size: Type.Integer({ minimum: 512 }),
  lss: Type.Integer({ minimum: 0x10, maximum: 0x1f }),
  volumeNumber: Type.Integer({ minimum: 0, maximum: 255 }),
  uniqueId: Type.String({ pattern: '^[0-9a-f]{32}$' }),
  readOnly: Type.Boolean(),
  createdAt: Type.String(),
});

export const PoolRecordSchema = Type.Object({
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

/** The first schema violation as "path: message", or undefined when the value conforms. */
export function firstViolation(value: unknown): string | undefined {
  if (Value.Check(PoolRecordSchema, value)) return undefined;
  const [first] = Value.Errors(PoolRecordSchema, value);
  return first ? `${first.instancePath || '/'}: ${first.message}` : 'does not match the schema';
}
