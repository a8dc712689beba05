/**
 * FlashCopy over the control API (spec §2): establish, withdraw from either
 * side, query a volume's role and the ESS strings, change the copy rate,
 * refresh incremental relationships, consistency groups. Handlers only
 * translate; the FlashCopyManager validates and decides. `flashcopy` is read
 * per request (the manager may open after the app is built).
 *
 *   GET    /flashcopy                       every relationship, and the groups
 *   POST   /flashcopy                       establish (201)
 *   GET    /flashcopy/volumes/{name}        the volume's role, relationships, rsQuery lines
 *   PATCH  /flashcopy/volumes/{name}        { rate }: background copy rate
 *   DELETE /flashcopy/volumes/{name}        withdraw every relationship of the volume
 *   POST   /flashcopy/volumes/{name}/refresh  incremental refresh
 *   POST   /flashcopy/groups                establish a consistency group (201)
 *   DELETE /flashcopy/groups/{name}         withdraw a consistency group
 */
import { Type, type Static } from '@fastify/type-provider-typebox';
import type { FlashCopyManager } from '../copy/flashcopy/index.js';
import { RELAXATIONS } from '../copy/flashcopy/profile.js';
import type { RouteModule } from './routes.js';
import { LunNameParams, errorResponses } from './schemas.js';

const tags = ['flashcopy'];

const Rate = Type.Union([Type.Integer({ minimum: 0 }), Type.String(), Type.Null()], {
  description: "background copy rate in bytes per second, or with a unit ('64M' = 64 MiB/s); 0 pauses; null is unlimited",
  examples: ['64M', 0, null],
});

const EstablishFields = {
  mode: Type.Optional(Type.Union([Type.Literal('copy'), Type.Literal('nocopy')], { description: "'copy' (default) ends by itself when copied; 'nocopy' copies on write only and lasts until withdrawn" })),
  incremental: Type.Optional(Type.Boolean({ description: 'keep the relationship after the copy, recording changes, for refresh' })),
  grainSize: Type.Optional(Type.Union([Type.Integer(), Type.String()], { description: "copy grain (track): a power of two from 4K to 1M; default '64K'" })),
  rate: Type.Optional(Rate),
  permitIfTargetOnline: Type.Optional(Type.Boolean({ description: 'establish even when a host has the target online (F-P5)' })),
  relax: Type.Optional(Type.Array(Type.Union(RELAXATIONS.map((r) => Type.Literal(r))), { description: 'ESS rules to relax for this establish; queries then say so' })),
};

const EstablishBody = Type.Object({ source: Type.String(), target: Type.String(), ...EstablishFields }, { additionalProperties: false, title: 'EstablishFlashCopy' });

const GroupBody = Type.Object(
  {
    name: Type.Optional(Type.String({ description: 'unique among active groups; default fcg<n>' })),
    pairs: Type.Array(Type.Object({ source: Type.String(), target: Type.String() }, { additionalProperties: false }), { minItems: 1 }),
    ...EstablishFields,
  },
  { additionalProperties: false, title: 'EstablishFlashCopyGroup' },
);

const RateBody = Type.Object({ rate: Rate }, { additionalProperties: false, title: 'FlashCopyRate' });

const Progress = Type.Object({
  grains: Type.Integer(),
  copiedGrains: Type.Integer(),
  remainingGrains: Type.Integer({ description: 'tracks still to copy (the source Information panel)' }),
  bytesRemaining: Type.Integer(),
  percent: Type.Number(),
  etaSeconds: Type.Union([Type.Integer(), Type.Null()], { description: 'null when background copy does not run (NOCOPY, paused, done)' }),
});

const Relationship = Type.Object(
  {
    id: Type.String(),
    source: Type.String(),
    target: Type.String(),
    mode: Type.String({ enum: ['copy', 'nocopy'] }),
    incremental: Type.Boolean(),
    state: Type.String({ enum: ['none', 'establishing', 'copying', 'copy-on-write', 'copied', 'terminating'] }),
    grainSize: Type.Integer(),
    size: Type.Integer({ description: 'bytes covered: the source size at T0' }),
    t0: Type.String({ format: 'date-time' }),
    establishedAt: Type.String({ format: 'date-time' }),
    rate: Type.Union([Type.Integer(), Type.Null()]),
    permitIfTargetOnline: Type.Boolean(),
    profile: Type.String({ enum: ['strict', 'relaxed'], description: "'relaxed' when an ESS rule was relaxed for it" }),
    relaxed: Type.Array(Type.String()),
    group: Type.Union([Type.String(), Type.Null()]),
    progress: Progress,
    changedGrains: Type.Optional(Type.Integer({ description: 'incremental: grains written on either side since T0' })),
  },
  { title: 'FlashCopyRelationship' },
);

const Group = Type.Object({ name: Type.String(), t0: Type.String({ format: 'date-time' }), relationships: Type.Array(Relationship) }, { title: 'FlashCopyGroup' });

const VolumeQuery = Type.Object(
  {
    volume: Type.String(),
    role: Type.String({ enum: ['source', 'target', 'none'], description: 'FlashCopy_state' }),
    relationships: Type.Array(Relationship),
    remainingGrains: Type.Integer(),
    ess: Type.Array(Type.String(), { description: 'rsQuery output lines' }),
    summary: Type.String({ description: 'the configuration summary line' }),
  },
  { title: 'FlashCopyVolume' },
);

const Withdrawn = Type.Object({ withdrawn: Type.Array(Relationship) }, { title: 'FlashCopyWithdrawn' });
const GroupParams = Type.Object({ name: Type.String() });

export type EstablishBodyT = Static<typeof EstablishBody>;

export function flashcopyRoutes(flashcopy: () => FlashCopyManager): RouteModule {
  return async (app) => {
    app.get(
      '/flashcopy',
      {
        schema: {
          operationId: 'listFlashCopies',
          summary: 'List FlashCopy relationships and consistency groups',
          tags,
          response: { 200: Type.Object({ relationships: Type.Array(Relationship), groups: Type.Array(Group) }), ...errorResponses },
        },
      },
      async () => ({ relationships: flashcopy().list(), groups: flashcopy().groups() }),
    );

    app.post(
      '/flashcopy',
      { schema: { operationId: 'establishFlashCopy', summary: 'Establish source -> target; returns at T0', tags, body: EstablishBody, response: { 201: Relationship, ...errorResponses } } },
      async (request, reply) => {
        const { source, target, ...options } = request.body;
        const info = await flashcopy().establish(source, target, options);
        return reply.status(201).header('location', `${app.prefix}/flashcopy/volumes/${encodeURIComponent(source)}`).send(info);
      },
    );

    app.get(
      '/flashcopy/volumes/:name',
      { schema: { operationId: 'queryFlashCopy', summary: "A volume's FlashCopy role, relationships and rsQuery lines", tags, params: LunNameParams, response: { 200: VolumeQuery, ...errorResponses } } },
      async (request) => flashcopy().query(request.params.name),
    );

    app.patch(
      '/flashcopy/volumes/:name',
      { schema: { operationId: 'setFlashCopyRate', summary: 'Change the background copy rate of the volume’s relationship', tags, params: LunNameParams, body: RateBody, response: { 200: Relationship, ...errorResponses } } },
      async (request) => flashcopy().setRate(request.params.name, request.body.rate),
    );

    app.delete(
      '/flashcopy/volumes/:name',
      { schema: { operationId: 'withdrawFlashCopy', summary: 'Withdraw every relationship of the volume (source or target)', tags, params: LunNameParams, response: { 200: Withdrawn, ...errorResponses } } },
      async (request) => ({ withdrawn: await flashcopy().withdraw(request.params.name) }),
    );

    app.post(
      '/flashcopy/volumes/:name/refresh',
      { schema: { operationId: 'refreshFlashCopy', summary: 'Incremental refresh: a new T0, copying only changed grains', tags, params: LunNameParams, response: { 200: Relationship, ...errorResponses } } },
      async (request) => flashcopy().refresh(request.params.name),
    );

    app.post(
      '/flashcopy/groups',
      { schema: { operationId: 'establishFlashCopyGroup', summary: 'Establish several pairs with one T0 (all or none)', tags, body: GroupBody, response: { 201: Group, ...errorResponses } } },
      async (request, reply) => reply.status(201).send(await flashcopy().establishGroup(request.body)),
    );

    app.delete(
      '/flashcopy/groups/:name',
      { schema: { operationId: 'withdrawFlashCopyGroup', summary: 'Withdraw every relationship of a consistency group at once', tags, params: GroupParams, response: { 200: Withdrawn, ...errorResponses } } },
      async (request) => ({ withdrawn: await flashcopy().withdrawGroup(request.params.name) }),
    );
  };
}
