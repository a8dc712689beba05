/**
 * Target ports, faults, fate groups and fault timelines over the control
 * API (spec/multipath.md §5.1 item 1). Handlers only translate; the
 * PortManager (src/multipath/port-manager.ts) decides. Fault objects are the
 * library's `Fault` union as JSON, e.g. {"kind":"down"},
 * {"kind":"latency","ms":50}, {"kind":"error","rate":0.1},
 * {"kind":"flap","periodMs":2000,"duty":0.5}, {"kind":"hang"}, {"kind":"standby"}.
 *
 *   GET    /ports                          every extra target port
 *   POST   /ports                          add one: { name, luns?, host?, port?, socket? } (201)
 *   GET    /ports/{port}
 *   DELETE /ports/{port}
 *   PUT    /ports/{port}/faults            { faults: Fault[] } (empty: healthy)
 *   DELETE /ports/{port}/faults            clear
 *   GET    /fate-groups
 *   POST   /fate-groups                    { name, ports } (201)
 *   DELETE /fate-groups/{group}
 *   PUT    /fate-groups/{group}/faults     one fault on every member at once
 *   DELETE /fate-groups/{group}/faults
 *   GET    /fault-timelines
 *   POST   /fault-timelines                { steps: [{ atMs, port | group, faults? }] } (201)
 *   DELETE /fault-timelines/{id}           cancel the steps not yet applied
 */
import { Type } from '@fastify/type-provider-typebox';
import type { Fault } from '../multipath/fault-switch.js';
import type { PortManager } from '../multipath/port-manager.js';
import type { RouteModule } from './routes.js';
import { errorResponses as errors } from './schemas.js';

const FaultT = Type.Object({ kind: Type.String() }, { additionalProperties: true, description: 'a Fault: down | hang | standby | latency | error | flap, with its fields' });
const FaultsBody = Type.Object({ faults: Type.Array(FaultT) }, { additionalProperties: false, title: 'Faults' });
const PortParams = Type.Object({ port: Type.String() });
const GroupParams = Type.Object({ group: Type.String() });
const IdParams = Type.Object({ id: Type.String() });

const AddPortBody = Type.Object(
  {
    name: Type.String(),
    luns: Type.Optional(Type.Array(Type.String(), { description: 'default: every LUN of the pool' })),
    host: Type.Optional(Type.String({ description: 'TCP address (default 127.0.0.1)' })),
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: 'TCP port; 0 picks a free one' })),
    socket: Type.Optional(Type.String({ description: 'unix socket path instead of TCP' })),
  },
  { additionalProperties: false, title: 'AddPort' },
);

const GroupBody = Type.Object({ name: Type.String(), ports: Type.Array(Type.String(), { minItems: 1 }) }, { additionalProperties: false, title: 'FateGroup' });

const TimelineBody = Type.Object(
  {
    steps: Type.Array(
      Type.Object(
        {
          atMs: Type.Integer({ minimum: 0, description: 'milliseconds after the timeline is created' }),
          port: Type.Optional(Type.String()),
          group: Type.Optional(Type.String()),
          faults: Type.Optional(Type.Array(FaultT)),
          note: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
      { minItems: 1 },
    ),
  },
  { additionalProperties: false, title: 'FaultTimeline' },
);

/** Responses: documents as the library returns them (see src/hosts, src/multipath), or an error body. */
const errorResponses = { 200: Type.Any(), 201: Type.Any(), 204: Type.Null({ description: 'done' }), ...errors } as const;

export function multipathRoutes(ports: () => PortManager): RouteModule {
  return async (app) => {
    const tags = ['ports'];

    app.get('/ports', { schema: { operationId: 'listPorts', summary: 'List target ports', tags, response: errorResponses } }, async () => ({ ports: ports().list() }));

    app.post('/ports', { schema: { operationId: 'addPort', summary: 'Add a target port (an extra NBD listener)', tags, body: AddPortBody, response: errorResponses } }, async (request, reply) => {
      const info = await ports().add(request.body);
      return reply.status(201).header('location', `${app.prefix}/ports/${encodeURIComponent(info.name)}`).send(info);
    });

    app.get('/ports/:port', { schema: { operationId: 'getPort', summary: 'Describe a target port', tags, params: PortParams, response: errorResponses } }, async (request) =>
      ports().info(request.params.port),
    );

    app.delete('/ports/:port', { schema: { operationId: 'deletePort', summary: 'Remove a target port', tags, params: PortParams, response: errorResponses } }, async (request, reply) => {
      await ports().remove(request.params.port);
      return reply.status(204).send(null);
    });

    app.put('/ports/:port/faults', { schema: { operationId: 'setPortFaults', summary: 'Set the faults of a port', tags, params: PortParams, body: FaultsBody, response: errorResponses } }, async (request) =>
      ports().setFaults(request.params.port, request.body.faults as Fault[]),
    );

    app.delete('/ports/:port/faults', { schema: { operationId: 'clearPortFaults', summary: 'Clear the faults of a port', tags, params: PortParams, response: errorResponses } }, async (request) =>
      ports().setFaults(request.params.port, []),
    );

    app.get('/fate-groups', { schema: { operationId: 'listFateGroups', summary: 'List fate groups', tags, response: errorResponses } }, async () => ({ groups: ports().listGroups() }));

    app.post('/fate-groups', { schema: { operationId: 'createFateGroup', summary: 'Group ports that share a component', tags, body: GroupBody, response: errorResponses } }, async (request, reply) =>
      reply.status(201).send(ports().createGroup(request.body.name, request.body.ports)),
    );

    app.delete('/fate-groups/:group', { schema: { operationId: 'deleteFateGroup', summary: 'Delete a fate group', tags, params: GroupParams, response: errorResponses } }, async (request, reply) => {
      ports().deleteGroup(request.params.group);
      return reply.status(204).send(null);
    });

    app.put(
      '/fate-groups/:group/faults',
      { schema: { operationId: 'setFateGroupFaults', summary: 'Set one fault on every member at once', tags, params: GroupParams, body: FaultsBody, response: errorResponses } },
      async (request) => ports().setGroupFaults(request.params.group, request.body.faults as Fault[]),
    );

    app.delete('/fate-groups/:group/faults', { schema: { operationId: 'clearFateGroupFaults', summary: 'Clear the faults of every member', tags, params: GroupParams, response: errorResponses } }, async (request) =>
      ports().setGroupFaults(request.params.group, []),
    );

    app.get('/fault-timelines', { schema: { operationId: 'listFaultTimelines', summary: 'Scripted fault timelines', tags, response: errorResponses } }, async () => ({ timelines: ports().listTimelines() }));

    app.post('/fault-timelines', { schema: { operationId: 'scheduleFaults', summary: 'Schedule faults on a timeline (relative to now)', tags, body: TimelineBody, response: errorResponses } }, async (request, reply) =>
      reply.status(201).send(ports().schedule(request.body.steps.map((s) => ({ ...s, faults: s.faults as Fault[] | undefined })))),
    );

    app.delete('/fault-timelines/:id', { schema: { operationId: 'cancelFaultTimeline', summary: 'Cancel the steps not yet applied', tags, params: IdParams, response: errorResponses } }, async (request, reply) => {
      ports().cancelTimeline(request.params.id);
      return reply.status(204).send(null);
    });
  };
}
