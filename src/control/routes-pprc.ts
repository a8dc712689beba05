/**
 * PPRC over the control API (spec/copy-services.md §3, §4.4, §5.2-§5.5).
 * Handlers only translate; the PPRC manager validates and decides, and its
 * results pass through as JSON. Everything is read per request (the manager
 * opens after the app is built).
 *
 * Primary side (this ESS mirrors to others):
 *   GET    /pprc                              ESSs, links, paths and pairs at once
 *   GET    /pprc/ess                          this ESS's serial and the registered remote ESSs
 *   POST   /pprc/ess                          register a remote ESS: control URL + NBD endpoint (+ TLS files)
 *   GET    /pprc/links                        physical links with their faults
 *   POST   /pprc/links                        add a link to an ESS (201)
 *   DELETE /pprc/links/{id}                   remove a link
 *   PUT    /pprc/links/{id}/fault             set faults: down, latencyMs (one way), bandwidth (bytes/s)
 *   DELETE /pprc/links/{id}/fault             clear every fault of the link
 *   GET    /pprc/paths                        logical paths
 *   POST   /pprc/paths                        establish a path (ifExists skip | replace)
 *   DELETE /pprc/paths/{lss}/{to}/{targetLss} remove a path
 *   GET    /pprc/pairs                        every pair of this ESS (either role)
 *   POST   /pprc/pairs                        establish (201; returns once established, PP-37)
 *   GET    /pprc/pairs/{volume}               query: role, state, out-of-sync tracks, rsQuery lines
 *   POST   /pprc/pairs/{volume}/suspend       { from: source | target }
 *   POST   /pprc/pairs/{volume}/resume        resync = establish out-of-sync-only
 *   DELETE /pprc/pairs/{volume}?from=target   terminate
 *   POST   /pprc/pairs/{volume}/wait          until copied to thresholdPercent (rsQueryComplete)
 *   POST   /pprc/pairs/{volume}/audit         compare primary and secondary checksums
 *   PUT    /pprc/lss/{lss}                    Critical Heavy, consistency group, timeout
 *   POST   /pprc/freeze, /pprc/release        { lss: [...] }
 *   POST   /pprc/power-cycle                  CRIT settings take effect (PP-28)
 *
 * Secondary side (another ESS mirrors to this one; RemoteSecondaryEss calls these):
 *   GET    /pprc/secondary                              heartbeat view of bound secondaries
 *   GET    /pprc/secondary/volumes/{name}               describe (works on a bound secondary: PP-07)
 *   PUT    /pprc/secondary/volumes/{name}/binding       bind for a pair
 *   PUT    /pprc/secondary/volumes/{name}/status        { pairId, suspended, writeInhibited, reason }
 *   DELETE /pprc/secondary/volumes/{name}/binding/{pairId}  unbind
 *   POST   /pprc/secondary/channels                     open the hidden link export { volume, pairId, linkIndex } -> { exportName }
 */
import { Type, type Static } from '@fastify/type-provider-typebox';
import type { PprcVolumeQuery } from '../copy/pprc/manager.js';
import type { PprcCoreApi } from '../copy/pprc/remote/core-api.js';
import type { PprcLinkExports } from '../copy/pprc/remote/link-exports.js';
import type { RemoteEssRegistry } from '../copy/pprc/remote/remote-registry.js';
import { LunrigError } from '../errors.js';
import { parseLss } from '../store/identity.js';
import type { RouteModule } from './routes.js';
import { LunNameParams, errorResponses } from './schemas.js';

const tags = ['pprc'];
const secondaryTags = ['pprc-secondary'];

/** What the PPRC routes reach; each is read per request. */
export interface PprcServing {
  manager(): PprcCoreApi;
  remotes(): RemoteEssRegistry;
  links(): PprcLinkExports;
  /** This ESS's serial. */
  serial(): string;
}

const Lss = Type.Union([Type.Integer(), Type.String()], { description: "open-systems LSS 0x10..0x1f, as a number or hex string ('10', '0x10')", examples: [16, '11'] });
const Serial = Type.String({ description: '5-character ESS serial', examples: ['FCA31'] });
/** A core result, passed through as the manager gave it. */
const Any = (title: string, description?: string) => Type.Object({}, { additionalProperties: true, title, ...(description !== undefined && { description }) });

const TlsConfig = Type.Object(
  {
    mode: Type.Optional(Type.Union([Type.Literal('require'), Type.Literal('optional')])),
    certificates: Type.Optional(Type.String({ description: 'X.509 directory: ca-cert.pem [client-cert.pem client-key.pem]' })),
    servername: Type.Optional(Type.String()),
    psk: Type.Optional(Type.String({ description: 'PSK file, identity:hexkey lines' })),
    pskIdentity: Type.Optional(Type.String()),
  },
  { additionalProperties: false, title: 'RemoteEssTls', description: 'credential files on the primary server, read when connecting' },
);

const NbdTarget = Type.Union([Type.Object({ host: Type.String(), port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })) }, { additionalProperties: false }), Type.Object({ path: Type.String() }, { additionalProperties: false })]);

const AddEssBody = Type.Object(
  {
    controlUrl: Type.String({ description: "the remote server's control API, http://HOST:PORT" }),
    nbd: Type.Union([Type.String({ description: 'HOST:PORT or a unix socket path' }), NbdTarget]),
    serial: Type.Optional(Serial),
    tls: Type.Optional(TlsConfig),
  },
  { additionalProperties: false, title: 'AddRemoteEss' },
);

const RemoteEss = Type.Object(
  {
    serial: Serial,
    controlUrl: Type.String(),
    nbd: NbdTarget,
    nbdEndpoint: Type.String(),
    tls: Type.Optional(TlsConfig),
    addedAt: Type.String({ format: 'date-time' }),
    openLinks: Type.Integer({ description: 'NBD link connections open now' }),
  },
  { title: 'RemoteEss' },
);

const EssList = Type.Object({ serial: Serial, remotes: Type.Array(RemoteEss) }, { title: 'PprcEssList' });

const AddLinkBody = Type.Object(
  {
    id: Type.Optional(Type.String()),
    to: Serial,
    distanceKm: Type.Optional(Type.Number({ minimum: 0, description: 'at most 103 km (ESS profile)' })),
    handshakes: Type.Optional(Type.Integer({ minimum: 1, maximum: 6, description: 'round trips per write: 1 (default) or 3 (ESCON)' })),
  },
  { additionalProperties: false, title: 'AddPprcLink' },
);

const FaultBody = Type.Object(
  {
    down: Type.Optional(Type.Boolean()),
    latencyMs: Type.Optional(Type.Number({ minimum: 0, description: 'added one-way latency' })),
    bandwidth: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description: 'bytes per second; null or 0: unlimited' })),
  },
  { additionalProperties: false, minProperties: 1, title: 'PprcLinkFault' },
);

const PathBody = Type.Object(
  {
    lss: Lss,
    to: Serial,
    targetLss: Lss,
    links: Type.Array(Type.String(), { minItems: 1, maxItems: 8 }),
    ifExists: Type.Optional(Type.Union([Type.Literal('skip'), Type.Literal('replace')], { description: "'skip': do not establish if it exists (notExecuted); 'replace': force removal of existing paths" })),
  },
  { additionalProperties: false, title: 'EstablishPprcPath' },
);

const PathParams = Type.Object({ lss: Type.String(), to: Type.String(), targetLss: Type.String() });

const Mode = Type.Union([Type.Literal('copy-entire'), Type.Literal('no-copy'), Type.Literal('out-of-sync-only')]);

const EstablishBody = Type.Object(
  {
    primary: Type.String(),
    secondary: Type.Object({ ess: Type.Optional(Serial), volume: Type.String() }, { additionalProperties: false, description: 'ess: absent for this ESS' }),
    mode: Type.Optional(Mode),
    criticalVolume: Type.Optional(Type.Boolean()),
    permitIfTargetOnline: Type.Optional(Type.Boolean()),
    force: Type.Optional(Type.Boolean({ description: 'no-copy on a suspended pair (drops the change bitmap)' })),
  },
  { additionalProperties: false, title: 'EstablishPprcPair' },
);

const From = Type.Union([Type.Literal('source'), Type.Literal('target')], { description: 'the ESS the task is scheduled on' });
const FromBody = Type.Object({ from: Type.Optional(From) }, { additionalProperties: false });
const FromQuery = Type.Object({ from: Type.Optional(From) }, { additionalProperties: false });
const ResumeBody = Type.Object(
  { secondary: Type.Optional(Type.Object({ ess: Type.Optional(Serial), volume: Type.String() }, { additionalProperties: false })), criticalVolume: Type.Optional(Type.Boolean()) },
  { additionalProperties: false, description: 'the secondary defaults to the pair the primary still records' },
);
const WaitBody = Type.Object({ thresholdPercent: Type.Optional(Type.Number({ minimum: 0, maximum: 100 })) }, { additionalProperties: false });
const LssBody = Type.Object(
  { criticalHeavy: Type.Optional(Type.Boolean()), consistencyGroup: Type.Optional(Type.Boolean()), consistencyTimeoutSec: Type.Optional(Type.Number({ minimum: 0 })) },
  { additionalProperties: false, minProperties: 1, title: 'PprcLssSettings' },
);
const LssParams = Type.Object({ lss: Type.String() });
const LssListBody = Type.Object({ lss: Type.Array(Lss, { minItems: 1 }) }, { additionalProperties: false });

const VolumeIdentity = Type.Object({ name: Type.String(), volumeId: Type.String(), uniqueId: Type.String(), serial: Type.String(), lss: Type.Integer() });
const SecondaryFacts = Type.Object(
  {
    name: Type.String(),
    identity: VolumeIdentity,
    size: Type.Integer(),
    online: Type.Boolean(),
    role: Type.Union([Type.Literal('simplex'), Type.Literal('source'), Type.Literal('target')]),
    pairId: Type.Optional(Type.String()),
    fcRole: Type.Optional(Type.Union([Type.Literal('source'), Type.Literal('target'), Type.Literal('none')])),
    fcEstablishing: Type.Optional(Type.Boolean()),
  },
  { title: 'PprcSecondaryFacts' },
);
const BindingBody = Type.Object(
  {
    pairId: Type.String({ minLength: 1 }),
    primary: Type.Object({ serial: Type.String(), lss: Type.Integer(), volume: Type.String(), volumeId: Type.String() }),
    criticalHeavy: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, title: 'PprcSecondaryBinding' },
);
const StatusBody = Type.Object(
  { pairId: Type.String({ minLength: 1 }), suspended: Type.Boolean(), writeInhibited: Type.Boolean(), reason: Type.Optional(Type.String()) },
  { additionalProperties: false, title: 'PprcSecondaryStatus' },
);
const UnbindParams = Type.Object({ name: Type.String(), pairId: Type.String() });
const ChannelBody = Type.Object({ volume: Type.String(), pairId: Type.String({ minLength: 1 }), linkIndex: Type.Integer({ minimum: 0 }) }, { additionalProperties: false, title: 'PprcChannelRequest' });
const Ok = Type.Object({ ok: Type.Boolean() });

export type EstablishPprcBody = Static<typeof EstablishBody>;

export function pprcRoutes(pprc: PprcServing): RouteModule {
  return async (app) => {
    const m = () => pprc.manager();
    // POSTs whose body is optional ({ from }, { thresholdPercent }, ...) also take no body at all (curl -X POST).
    app.addHook('preValidation', async (request) => {
      if (request.method === 'POST' && request.body === undefined) request.body = {};
    });

    // --- overview and ESSs -------------------------------------------------

    app.get(
      '/pprc',
      { schema: { operationId: 'pprcOverview', summary: 'Remote ESSs, links, paths and pairs of this ESS', tags, response: { 200: Any('PprcOverview'), ...errorResponses } } },
      async () => ({ serial: pprc.serial(), remotes: pprc.remotes().list(), links: m().links(), paths: m().paths(), pairs: m().list() }),
    );

    app.get('/pprc/ess', { schema: { operationId: 'listPprcEss', summary: 'This ESS and the remote ESSs it can mirror to', tags, response: { 200: EssList, ...errorResponses } } }, async () => ({
      serial: pprc.serial(),
      remotes: pprc.remotes().list(),
    }));

    app.post(
      '/pprc/ess',
      { schema: { operationId: 'addPprcEss', summary: 'Register another lunrig server as a secondary ESS (persisted)', tags, body: AddEssBody, response: { 201: RemoteEss, ...errorResponses } } },
      async (request, reply) => {
        const { tls, serial, ...rest } = request.body;
        const info = await pprc.remotes().add({ ...rest, ...(tls && { tls }), ...(serial !== undefined && { serial }) });
        return reply.status(201).send(info);
      },
    );

    // --- links -------------------------------------------------------------

    app.get('/pprc/links', { schema: { operationId: 'listPprcLinks', summary: 'Physical links and their faults', tags, response: { 200: Type.Object({ links: Type.Array(Any('PprcLink')) }), ...errorResponses } } }, async () => ({
      links: m().links(),
    }));

    app.post(
      '/pprc/links',
      { schema: { operationId: 'addPprcLink', summary: 'Add a physical link to an ESS', tags, body: AddLinkBody, response: { 201: Any('PprcLink'), ...errorResponses } } },
      async (request, reply) => reply.status(201).send(asObject(await m().addLink(request.body), {})),
    );

    const LinkParams = Type.Object({ id: Type.String() });
    app.delete(
      '/pprc/links/:id',
      { schema: { operationId: 'removePprcLink', summary: 'Remove a physical link (pairs whose last path goes suspend)', tags, params: LinkParams, response: { 200: Any('PprcLinkRemoved'), ...errorResponses } } },
      async (request) => asObject(await m().removeLink(request.params.id), { removed: request.params.id }),
    );

    app.put(
      '/pprc/links/:id/fault',
      { schema: { operationId: 'setPprcLinkFault', summary: 'Inject faults on a link: down, added latency, bandwidth limit', tags, params: LinkParams, body: FaultBody, response: { 200: Any('PprcLink'), ...errorResponses } } },
      async (request) => asObject(await m().setLinkFault(request.params.id, request.body), linkById(m(), request.params.id)),
    );

    app.delete(
      '/pprc/links/:id/fault',
      { schema: { operationId: 'clearPprcLinkFault', summary: 'Clear every fault of a link', tags, params: LinkParams, response: { 200: Any('PprcLink'), ...errorResponses } } },
      async (request) => asObject(await m().setLinkFault(request.params.id, { down: false, latencyMs: 0, bandwidth: null }), linkById(m(), request.params.id)),
    );

    // --- paths -------------------------------------------------------------

    app.get('/pprc/paths', { schema: { operationId: 'listPprcPaths', summary: 'Logical paths', tags, response: { 200: Type.Object({ paths: Type.Array(Any('PprcPath')) }), ...errorResponses } } }, async () => ({
      paths: m().paths(),
    }));

    app.post(
      '/pprc/paths',
      { schema: { operationId: 'establishPprcPath', summary: 'Establish a logical path primary LSS -> ESS, LSS over links', tags, body: PathBody, response: { 200: Any('PprcPathResult'), ...errorResponses } } },
      async (request) => {
        const { lss, targetLss, ...rest } = request.body;
        return asObject(await m().establishPath({ ...rest, lss: parseLss(lss), targetLss: parseLss(targetLss) }), {});
      },
    );

    app.delete(
      '/pprc/paths/:lss/:to/:targetLss',
      { schema: { operationId: 'removePprcPath', summary: 'Remove a logical path', tags, params: PathParams, response: { 200: Any('PprcPathRemoved'), ...errorResponses } } },
      async (request) => {
        const { lss, to, targetLss } = request.params;
        return asObject(await m().removePath({ lss: parseLss(lss), to, targetLss: parseLss(targetLss) }), { removed: true });
      },
    );

    // --- pairs -------------------------------------------------------------

    app.get('/pprc/pairs', { schema: { operationId: 'listPprcPairs', summary: 'Every PPRC pair this ESS holds a volume of', tags, response: { 200: Type.Object({ pairs: Type.Array(Any('PprcPair')) }), ...errorResponses } } }, async () => ({
      pairs: m().list(),
    }));

    app.post(
      '/pprc/pairs',
      { schema: { operationId: 'establishPprcPair', summary: 'Establish a pair; returns once established (copy continues)', tags, body: EstablishBody, response: { 201: Any('PprcPairQuery'), ...errorResponses } } },
      async (request, reply) => {
        const { mode = 'copy-entire', ...rest } = request.body;
        await m().establish({ ...rest, mode });
        return reply.status(201).header('location', `${app.prefix}/pprc/pairs/${encodeURIComponent(rest.primary)}`).send(m().query(rest.primary));
      },
    );

    app.get(
      '/pprc/pairs/:name',
      { schema: { operationId: 'queryPprc', summary: "A volume's PPRC role, state, out-of-sync tracks and rsQuery lines", tags, params: LunNameParams, response: { 200: Any('PprcPairQuery'), ...errorResponses } } },
      async (request) => m().query(request.params.name),
    );

    app.post(
      '/pprc/pairs/:name/suspend',
      { schema: { operationId: 'suspendPprc', summary: 'Suspend a pair (scheduled on the source or the target ESS)', tags, params: LunNameParams, body: FromBody, response: { 200: Any('PprcPairQuery'), ...errorResponses } } },
      async (request) => {
        await m().suspend(request.params.name, fromOf(request.body.from));
        return m().query(request.params.name);
      },
    );

    app.post(
      '/pprc/pairs/:name/resume',
      { schema: { operationId: 'resumePprc', summary: 'Resync: establish with copy out-of-sync tracks only', tags, params: LunNameParams, body: ResumeBody, response: { 200: Any('PprcPairQuery'), ...errorResponses } } },
      async (request) => {
        const name = request.params.name;
        const secondary = request.body.secondary ?? secondaryOf(m().query(name), name);
        const criticalVolume = request.body.criticalVolume ?? m().query(name).pair?.criticalVolume;
        await m().establish({ primary: name, secondary, mode: 'out-of-sync-only', ...(criticalVolume !== undefined && { criticalVolume }) });
        return m().query(name);
      },
    );

    app.delete(
      '/pprc/pairs/:name',
      { schema: { operationId: 'terminatePprc', summary: 'Terminate a pair (from the target: only the secondary becomes simplex when the primary is unreachable)', tags, params: LunNameParams, querystring: FromQuery, response: { 200: Any('PprcTerminated'), ...errorResponses } } },
      async (request) => asObject(await m().terminate(request.params.name, fromOf(request.query.from)), { terminated: request.params.name }),
    );

    app.post(
      '/pprc/pairs/:name/wait',
      { schema: { operationId: 'waitPprc', summary: 'rsQueryComplete: resolve once copied to the threshold (default 100%)', tags, params: LunNameParams, body: WaitBody, response: { 200: Any('PprcPairQuery'), ...errorResponses } } },
      async (request) => {
        await m().waitForCopy(request.params.name, request.body.thresholdPercent !== undefined ? { thresholdPercent: request.body.thresholdPercent } : {});
        return m().query(request.params.name);
      },
    );

    app.post(
      '/pprc/pairs/:name/audit',
      { schema: { operationId: 'auditPprc', summary: 'Compare primary and secondary track checksums', tags, params: LunNameParams, response: { 200: Any('PprcAudit'), ...errorResponses } } },
      async (request) => asObject(await m().audit(request.params.name), {}),
    );

    // --- LSS, freeze, power cycle ------------------------------------------

    app.put(
      '/pprc/lss/:lss',
      { schema: { operationId: 'setPprcLss', summary: 'LSS settings: Critical Heavy (at the next power cycle), consistency group, timeout', tags, params: LssParams, body: LssBody, response: { 200: Any('PprcLss'), ...errorResponses } } },
      async (request) => {
        const lss = parseLss(request.params.lss);
        return asObject(await m().setLss(lss, request.body), { lss, ...request.body });
      },
    );

    app.post(
      '/pprc/freeze',
      { schema: { operationId: 'freezePprc', summary: 'Freeze: suspend every pair of the LSSs at once and hold their writes', tags, body: LssListBody, response: { 200: Any('PprcFreeze'), ...errorResponses } } },
      async (request) => {
        const lss = request.body.lss.map(parseLss);
        return asObject(await m().freeze(lss), { frozen: lss });
      },
    );

    app.post(
      '/pprc/release',
      { schema: { operationId: 'releasePprc', summary: 'Release the writes held by a freeze or a consistency group', tags, body: LssListBody, response: { 200: Any('PprcRelease'), ...errorResponses } } },
      async (request) => {
        const lss = request.body.lss.map(parseLss);
        return asObject(await m().release(lss), { released: lss });
      },
    );

    app.post(
      '/pprc/power-cycle',
      { schema: { operationId: 'powerCyclePprc', summary: 'Simulated ESS power cycle: pending CRIT settings take effect', tags, response: { 200: Any('PprcPowerCycle'), ...errorResponses } } },
      async () => asObject(await m().powerCycle(), { powerCycled: true }),
    );

    // --- secondary side ----------------------------------------------------

    const sec = () => m().asSecondary();

    app.get(
      '/pprc/secondary',
      { schema: { operationId: 'pprcSecondaryStatus', summary: 'Bound secondaries as the link heartbeat sees them', tags: secondaryTags, response: { 200: Any('PprcSecondaryHeartbeat'), ...errorResponses } } },
      async () => pprc.links().status(),
    );

    app.get(
      '/pprc/secondary/volumes/:name',
      { schema: { operationId: 'describePprcSecondary', summary: 'What a primary needs to know of a (would-be) secondary', tags: secondaryTags, params: LunNameParams, response: { 200: SecondaryFacts, ...errorResponses } } },
      async (request) => sec().describe(request.params.name),
    );

    app.put(
      '/pprc/secondary/volumes/:name/binding',
      { schema: { operationId: 'bindPprcSecondary', summary: 'Give the volume the secondary role for a pair', tags: secondaryTags, params: LunNameParams, body: BindingBody, response: { 200: Ok, ...errorResponses } } },
      async (request) => {
        const { criticalHeavy, ...binding } = request.body;
        const full = { ...binding, ...(criticalHeavy !== undefined && { criticalHeavy }) };
        await sec().bind(request.params.name, full);
        pprc.links().bound(request.params.name, full);
        return { ok: true };
      },
    );

    app.put(
      '/pprc/secondary/volumes/:name/status',
      { schema: { operationId: 'setPprcSecondaryStatus', summary: "Record the pair's status on the secondary", tags: secondaryTags, params: LunNameParams, body: StatusBody, response: { 200: Ok, ...errorResponses } } },
      async (request) => {
        const { pairId, reason, ...status } = request.body;
        const full = { ...status, ...(reason !== undefined && { reason }) };
        await sec().setStatus(request.params.name, pairId, full);
        pprc.links().statusSet(request.params.name, pairId, full);
        return { ok: true };
      },
    );

    app.delete(
      '/pprc/secondary/volumes/:name/binding/:pairId',
      { schema: { operationId: 'unbindPprcSecondary', summary: 'End the secondary role (no-op when bound to another pair)', tags: secondaryTags, params: UnbindParams, response: { 200: Ok, ...errorResponses } } },
      async (request) => {
        const { name, pairId } = request.params;
        await sec().unbind(name, pairId);
        await pprc.links().unbound(name, pairId);
        return { ok: true };
      },
    );

    app.post(
      '/pprc/secondary/channels',
      { schema: { operationId: 'openPprcChannel', summary: 'Open the hidden NBD export a link connection of a pair writes through', tags: secondaryTags, body: ChannelBody, response: { 200: Type.Object({ exportName: Type.String() }), ...errorResponses } } },
      async (request) => {
        const { volume, pairId, linkIndex } = request.body;
        return { exportName: await pprc.links().open(volume, pairId, linkIndex) };
      },
    );
  };
}

function fromOf(from: 'source' | 'target' | undefined): { from?: 'source' | 'target' } {
  return from === undefined ? {} : { from };
}

/** A core result as a JSON object: itself when it is one, else the fallback. */
function asObject(result: unknown, fallback: object): object {
  return typeof result === 'object' && result !== null && !Array.isArray(result) ? result : fallback;
}

function linkById(manager: PprcCoreApi, id: string): object {
  return manager.links().find((l) => (l as { id?: unknown }).id === id) ?? { id };
}

/** The secondary a suspended primary still records, for resume. */
function secondaryOf(q: PprcVolumeQuery, name: string): { ess: string; volume: string } {
  if (q.role !== 'source' || !q.pair) {
    throw new LunrigError('PPRC_NOT_IN_PAIR', `volume '${name}' is not the primary of a pair; resume needs a suspended primary (or give the secondary)`, { volume: name, role: q.role });
  }
  return { ess: q.pair.secondary.serial, volume: q.pair.secondary.volume };
}
