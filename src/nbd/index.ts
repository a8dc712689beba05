/** lunrig's NBD layer: server, client, export registry and the protocol constants. */
export * as NBD from './constants.js';
export { NbdServer, type NbdListenOptions, type NbdListenResult, type NbdServerEvents } from './server.js';
export { DEFAULT_BLOCK_SIZE, DEFAULT_LIMITS, type NbdServerOptions, type ServerLimits } from './server-options.js';
export type { ConnectionStats } from './server-connection.js';
export { ExportRegistry, type ExportEntry, type ExportProvider } from './export-provider.js';
export { NbdClient, type NbdClientEvents, type NbdClientOptions, type NbdTarget, type RawReply, type RawRequest } from './client.js';
export type { BlockSizeConstraints, ExportListing } from './option-data-codec.js';
export { NBD_ERRNO, errnoForError, errorCodeForErrno } from './errno-map.js';
export { formatIdentityDescription, parseIdentityDescription } from './identity-description.js';
export { transmissionFlags } from './transmission-flags.js';
