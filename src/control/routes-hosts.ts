/**
 * Hosts, LUN masking and reservations over the control API. Handlers only
 * translate; HostRegistry and ReservationTable (src/hosts/) decide. NBD
 * carries no reservation commands, so this is where an initiator's
 * RESERVE / RELEASE / PERSISTENT RESERVE OUT go, naming its nexus (host and
 * target port: 'default' is the main NBD listener, others are `lunrig port`
 * names).
 *
 *   GET    /hosts                          hosts with initiators and mapped LUNs
 *   POST   /hosts                          create (201)
 *   GET    /hosts/{host}
 *   DELETE /hosts/{host}
 *   PUT    /hosts/{host}/luns/{lun}        map a LUN to the host
 *   DELETE /hosts/{host}/luns/{lun}        unmap
 *   GET    /masking                        { mode, enabled }
 *   PUT    /masking                        { mode: auto | on | off }
 *   GET    /luns/{name}/reservations       PR status (generation, keys, reservation) and SCSI-2 holder
 *   POST   /luns/{name}/reservations       one command from one nexus
 */
import { Type, type Static } from '@fastify/type-provider-typebox';
import type { HostRegistry } from '../hosts/host-registry.js';
import type { ReservationTable } from '../hosts/reservation-table.js';
import { PR_TYPE_NAMES, type Nexus, type PrOutRequest, type PrType } from '../hosts/reservation-types.js';
import type { RouteModule } from './routes.js';
import { LunNameParams, errorResponses as errors } from './schemas.js';

export interface HostsAccess {
  hosts: HostRegistry;
  reservations: ReservationTable;
}

const Initiator = Type.Object(
  {
    kind: Type.Union([Type.Literal('x509'), Type.Literal('psk'), Type.Literal('nbd-name')], { description: 'x509: TLS client certificate CN; psk: TLS PSK identity; nbd-name: the HOST part of an export name HOST/LUN' }),
    name: Type.String(),
  },
  { additionalProperties: false },
);

const CreateHostBody = Type.Object(
  {
    name: Type.String({ description: '1-64 characters A-Z a-z 0-9 . _ : -' }),
    initiators: Type.Optional(Type.Array(Initiator, { description: "default: [{ kind: 'nbd-name', name }]" })),
    luns: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: false, title: 'CreateHost' },
);

const HostParams = Type.Object({ host: Type.String() });
const MapParams = Type.Object({ host: Type.String(), lun: Type.String() });
const MaskingBody = Type.Object({ mode: Type.Union([Type.Literal('auto'), Type.Literal('on'), Type.Literal('off')]) }, { additionalProperties: false });

const Key = Type.Union([Type.String({ pattern: '^(0x)?[0-9a-fA-F]{1,16}$' }), Type.Integer({ minimum: 0 })], { description: '8-byte reservation key: hex (0x...) or a number' });

const ReservationCommand = Type.Object(
  {
    command: Type.Union(
      ['reserve', 'release', 'lun_reset', 'register', 'register_and_ignore', 'pr_reserve', 'pr_release', 'clear', 'preempt', 'preempt_and_abort'].map((c) => Type.Literal(c)),
      { description: 'reserve / release / lun_reset: SCSI-2; the rest: PERSISTENT RESERVE OUT service actions' },
    ),
    host: Type.String({ description: 'the initiator (a host name)' }),
    port: Type.Optional(Type.String({ description: "the target port the command arrives on (default 'default')" })),
    key: Type.Optional(Key),
    serviceKey: Type.Optional(Key),
    type: Type.Optional(Type.Union([...PR_TYPE_NAMES.map((t) => Type.Literal(t)), Type.Integer()], { description: 'PR type by name or SPC code (1, 3, 5, 6, 7, 8)' })),
    aptpl: Type.Optional(Type.Boolean({ description: 'REGISTER: activate persist through power loss (survives restarts)' })),
    allTargetPorts: Type.Optional(Type.Boolean({ description: 'REGISTER: ALL_TG_PT, the key covers every port for this host' })),
  },
  { additionalProperties: false, title: 'ReservationCommand' },
);

type ReservationCommandT = Static<typeof ReservationCommand>;

/** Responses: documents as the library returns them (see src/hosts, src/multipath), or an error body. */
const errorResponses = { 200: Type.Any(), 201: Type.Any(), 204: Type.Null({ description: 'done' }), ...errors } as const;

export function hostRoutes(access: () => HostsAccess): RouteModule {
  return async (app, { model }) => {
    const tags = ['hosts'];
    const lu = (name: string): string => model.lunInfo(name).uniqueId;

    app.get('/hosts', { schema: { operationId: 'listHosts', summary: 'List hosts, their initiators and mapped LUNs', tags, response: errorResponses } }, async () => {
      const { hosts } = access();
      return { masking: { mode: hosts.masking, enabled: hosts.maskingEnabled }, hosts: hosts.list() };
    });

    app.post('/hosts', { schema: { operationId: 'createHost', summary: 'Create a host (an initiator)', tags, body: CreateHostBody, response: errorResponses } }, async (request, reply) => {
      const lunIds = Object.fromEntries((request.body.luns ?? []).map((l) => [l, model.lunInfo(l).uniqueId]));
      const info = await access().hosts.create({ ...request.body, lunIds });
      return reply.status(201).header('location', `${app.prefix}/hosts/${encodeURIComponent(info.name)}`).send(info);
    });

    app.get('/hosts/:host', { schema: { operationId: 'getHost', summary: 'Describe a host', tags, params: HostParams, response: errorResponses } }, async (request) =>
      access().hosts.get(request.params.host),
    );

    app.delete('/hosts/:host', { schema: { operationId: 'deleteHost', summary: 'Delete a host', tags, params: HostParams, response: errorResponses } }, async (request, reply) => {
      await access().hosts.delete(request.params.host);
      return reply.status(204).send(null);
    });

    app.put('/hosts/:host/luns/:lun', { schema: { operationId: 'mapLun', summary: 'Map a LUN to a host', tags, params: MapParams, response: errorResponses } }, async (request) => {
      return access().hosts.map(request.params.host, request.params.lun, model.lunInfo(request.params.lun).uniqueId);
    });

    app.delete('/hosts/:host/luns/:lun', { schema: { operationId: 'unmapLun', summary: 'Unmap a LUN from a host', tags, params: MapParams, response: errorResponses } }, async (request) =>
      access().hosts.unmap(request.params.host, request.params.lun),
    );

    app.get('/masking', { schema: { operationId: 'getMasking', summary: 'LUN masking mode', tags, response: errorResponses } }, async () => {
      const { hosts } = access();
      return { mode: hosts.masking, enabled: hosts.maskingEnabled };
    });

    app.put('/masking', { schema: { operationId: 'setMasking', summary: "LUN masking: auto (on once a host exists), on, off", tags, body: MaskingBody, response: errorResponses } }, async (request) => {
      const { hosts } = access();
      await hosts.setMasking(request.body.mode);
      return { mode: hosts.masking, enabled: hosts.maskingEnabled };
    });

    app.get(
      '/luns/:name/reservations',
      { schema: { operationId: 'getReservations', summary: 'PERSISTENT RESERVE IN (keys, reservation, generation) and the SCSI-2 holder', tags: ['reservations'], params: LunNameParams, response: errorResponses } },
      async (request) => access().reservations.status(lu(request.params.name)),
    );

    app.post(
      '/luns/:name/reservations',
      { schema: { operationId: 'reservationCommand', summary: 'A reservation command from one I_T nexus (host, port)', tags: ['reservations'], params: LunNameParams, body: ReservationCommand, response: errorResponses } },
      async (request) => {
        const id = lu(request.params.name);
        const { hosts, reservations } = access();
        const body = request.body;
        hosts.get(body.host);
        const nexus: Nexus = { host: body.host, port: body.port ?? 'default' };
        const cmds = reservations.nexus(id, nexus);
        if (body.command === 'reserve') await cmds.reserve();
        else if (body.command === 'release') await cmds.release();
        else if (body.command === 'lun_reset') await cmds.lunReset();
        else await cmds.persistentReserveOut(prOut(body));
        return reservations.status(id);
      },
    );
  };
}

function prOut(b: ReservationCommandT): PrOutRequest {
  const type = (b.type ?? '') as PrType | number;
  switch (b.command) {
    case 'register':
      return { action: 'register', key: b.key, serviceKey: b.serviceKey ?? 0, aptpl: b.aptpl, allTargetPorts: b.allTargetPorts };
    case 'register_and_ignore':
      return { action: 'register_and_ignore', serviceKey: b.serviceKey ?? 0, aptpl: b.aptpl, allTargetPorts: b.allTargetPorts };
    case 'pr_reserve':
      return { action: 'reserve', key: b.key, type };
    case 'pr_release':
      return { action: 'release', key: b.key, type };
    case 'clear':
      return { action: 'clear', key: b.key };
    case 'preempt':
    case 'preempt_and_abort':
      return { action: b.command, key: b.key, serviceKey: b.serviceKey, type };
    default:
      throw new Error(`unreachable: ${b.command}`);
  }
}
