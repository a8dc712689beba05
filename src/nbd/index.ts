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
export type { NbdServerTlsOptions, NbdTlsMode, Pem, X509ServerCredentials } from './tls-options.js';
export type { NbdClientTlsOptions, ClientTlsInfo } from './tls-client.js';
export type { TlsPeerIdentity, TlsSessionInfo } from './tls-peer.js';
export { peerLabel } from './tls-peer.js';
export { parsePskFile, formatPskLine, type PskKeys } from './tls-psk.js';
export { loadPskFile, loadX509Directory, QEMU_PSK_FILE, type X509Files } from './tls-files.js';
export { DEFAULT_NBD_ENDPOINTS, PoolExports, describeExports, exportUris, type NbdEndpoints, type PoolExportInfo } from './pool-exports.js';
