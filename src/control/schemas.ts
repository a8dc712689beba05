/**
 * Wire schemas of the control API, v1. They validate requests, shape responses
 * (fields not listed here are not sent) and generate /openapi.json, so they
 * are the API's contract: change them deliberately.
 */
import { Type, type Static } from '@fastify/type-provider-typebox';
import { ERROR_CODES, type ErrorCode } from '../errors.js';

// TypeBox here is the `typebox` 1.x re-exported by @fastify/type-provider-typebox,
// the one its type provider infers from (not @sinclair/typebox 0.34).

const Size = Type.Union([Type.Integer(), Type.String()], {
  description: "bytes, or a string with a 1024-based unit such as '10G'; a positive multiple of 512",
  examples: [1073741824, '10G'],
});

const Lss = Type.Union([Type.Integer(), Type.String()], {
  description: "open-systems LSS 0x10..0x1f, as a number or hex string ('10', '0x10')",
  examples: [16, '11'],
});

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.Unsafe<ErrorCode>({ type: 'string', enum: [...ERROR_CODES] }),
      message: Type.String(),
      details: Type.Optional(Type.Object({}, { additionalProperties: true })),
    }),
  },
  { $id: 'Error', title: 'Error', description: 'what went wrong; `code` is stable, `message` is for people' },
);

export const LssInfo = Type.Object(
  {
    lss: Type.Integer(),
    address: Type.String({ description: '2105:<serial>:<LL>' }),
    luns: Type.Integer(),
    capacity: Type.Integer(),
  },
  { title: 'LssInfo' },
);

export const SystemInfo = Type.Object(
  {
    version: Type.String({ description: 'lunrig version' }),
    apiVersion: Type.Literal('v1'),
    pool: Type.Object({
      dir: Type.String(),
      serial: Type.String({ description: '5-character storage server serial' }),
      poolId: Type.String(),
      lunCount: Type.Integer(),
      lssList: Type.Array(LssInfo),
    }),
  },
  { title: 'SystemInfo' },
);

const lunFields = {
  name: Type.String(),
  size: Type.Integer({ description: 'capacity in bytes' }),
  lss: Type.Integer(),
  lssAddress: Type.String({ description: '2105:<serial>:<LL>' }),
  volumeNumber: Type.Integer({ description: 'volume number within the LSS, 0..255' }),
  volumeId: Type.String({ description: '8 characters: LSS digit, 2-digit volume number, serial' }),
  uniqueId: Type.String({ description: 'NAA type 6 id, 32 hex digits' }),
  readOnly: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
};

export const LunInfo = Type.Object(lunFields, { title: 'LunInfo' });

export const LunDetail = Type.Object(
  { ...lunFields, allocatedBytes: Type.Integer({ description: 'bytes the LUN occupies on disk' }) },
  { title: 'LunDetail' },
);

export const LunList = Type.Object({ luns: Type.Array(LunInfo) }, { title: 'LunList' });

export const LunNameParams = Type.Object({ name: Type.String() });

export const CreateLunBody = Type.Object(
  {
    name: Type.String({ description: '1-64 characters A-Z a-z 0-9 . _ - starting with a letter or digit' }),
    size: Size,
    lss: Type.Optional(Lss),
    readOnly: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, title: 'CreateLun' },
);

export const GrowLunBody = Type.Object({ size: Size }, { additionalProperties: false, title: 'GrowLun' });

/** The LUN settings that may change in place; at least one must be given. */
export const UpdateLunBody = Type.Object(
  { readOnly: Type.Optional(Type.Boolean({ description: 'refuse writes (NBD exports it READ_ONLY; open connections get EPERM)' })) },
  { additionalProperties: false, minProperties: 1, title: 'UpdateLun' },
);

export const ExportInfo = Type.Object(
  {
    name: Type.String({ description: 'the export name: the LUN name' }),
    size: Type.Integer({ description: 'bytes; a grown LUN shows its new size to new connections' }),
    readOnly: Type.Boolean(),
    uris: Type.Array(Type.String(), { description: 'NBD URIs that reach it (nbd://..., nbd+unix://...); empty when NBD is off' }),
  },
  { title: 'ExportInfo' },
);

export const ExportList = Type.Object({ exports: Type.Array(ExportInfo) }, { title: 'ExportList' });

/** Every route answers errors with the same body: the shared schema, registered once (see app.ts). */
const ErrorRef = Type.Unsafe<Static<typeof ErrorBody>>({ $ref: 'Error#' });
export const errorResponses = { '4xx': ErrorRef, '5xx': ErrorRef } as const;

export type ErrorBodyT = Static<typeof ErrorBody>;
export type SystemInfoT = Static<typeof SystemInfo>;
export type LunInfoT = Static<typeof LunInfo>;
export type LunDetailT = Static<typeof LunDetail>;
export type CreateLunBodyT = Static<typeof CreateLunBody>;
export type ExportInfoT = Static<typeof ExportInfo>;
