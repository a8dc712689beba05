/**
 * `lunrig/server`: the server side (HTTP control API, `lunrig serve` as a
 * function). Kept apart from the main entry so that importing `lunrig` for
 * pools and volumes does not load the HTTP framework.
 */
export { buildControlApp, V1_ROUTES, type ControlAppOptions } from './control/app.js';
export { createControlServer, type ControlServer, type ControlServerOptions } from './control/server.js';
export type { ControlModel } from './control/model.js';
export type { RouteModule } from './control/routes.js';
export { startServer, type RunningServer, type ServeOptions, type ServeSummary } from './cli/serve.js';
export { SERVICES, controlApiService, nbdService, type RunningService, type Service, type ServiceOptions } from './cli/services.js';
export { pprcRoutes, type PprcServing } from './control/routes-pprc.js';
export { PprcClient, type EstablishPprcRequest, type PprcQuery } from './control/pprc-client.js';
export { PprcService, type PprcServiceHooks, type PprcServiceOptions } from './copy/pprc/remote/serving.js';
export { RemoteSecondaryEss, linkExportName, type RemoteSecondaryOptions } from './copy/pprc/remote/remote-secondary.js';
export { RemoteEssRegistry, parseNbdEndpoint, type AddRemoteRequest, type RemoteEssInfo, type RemoteEssRecord, type RemoteTlsConfig } from './copy/pprc/remote/remote-registry.js';
export { PprcLinkExports, DEFAULT_HEARTBEAT_TIMEOUT_MS, type LinkExportsOptions } from './copy/pprc/remote/link-exports.js';
