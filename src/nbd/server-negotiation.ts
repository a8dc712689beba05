/**
 * The server's option loop (fixed newstyle, spec/nbd.md §2.2, §4 handshake
 * table), free of sockets: each option goes in, replies and an outcome come
 * out. The connection feeds it whole options and acts on the outcome.
 *
 * TLS (proto.md "TLS support"): NBD_OPT_STARTTLS is acknowledged with a
 * 'starttls' outcome; the connection upgrades the socket and starts a fresh
 * ServerNegotiation with the session (STARTTLS resets all negotiated state).
 * In 'require' mode (FORCEDTLS) every other option but ABORT is refused with
 * NBD_REP_ERR_TLS_REQD until then, and NBD_OPT_EXPORT_NAME, which cannot be
 * refused, disconnects.
 */
import * as C from './constants.js';
import type { ExportEntry, ExportRequester } from './export-provider.js';
import { encodeExportNameReply, encodeOptionReply } from './handshake-codec.js';
import { formatIdentityDescription } from './identity-description.js';
import { selectContexts, type MetaContext } from './meta-context.js';
import {
  decodeGoRequest,
  decodeMetaContextRequest,
  encodeErrorMessage,
  encodeInfoItem,
  encodeMetaContextReply,
  encodeServerReply,
  truncateUtf8,
  type GoRequest,
} from './option-data-codec.js';
import { optionName } from './protocol-names.js';
import type { ResolvedServerOptions } from './server-options.js';
import type { NbdTlsMode } from './tls-options.js';
import type { TlsSessionInfo } from './tls-peer.js';
import { transmissionFlags } from './transmission-flags.js';
import { NbdWireError, decodeString } from './wire.js';

/** What a connection needs to serve an export once the handshake is over. */
export interface NegotiatedExport {
  entry: ExportEntry;
  size: number;
  transmissionFlags: number;
  structuredReplies: boolean;
  /** Contexts selected by SET_META_CONTEXT for this export (empty: BLOCK_STATUS is refused). */
  metaContexts: MetaContext[];
}

export type OptionOutcome =
  | { kind: 'continue' }
  | { kind: 'transmission'; negotiated: NegotiatedExport }
  /** NBD_OPT_ABORT was acknowledged: flush the reply, then close. */
  | { kind: 'abort' }
  /** NBD_OPT_STARTTLS was acknowledged: flush the ACK, then hand the socket to TLS. */
  | { kind: 'starttls' }
  /** No error path exists (failed NBD_OPT_EXPORT_NAME): hard disconnect. */
  | { kind: 'disconnect'; reason: string };

export interface OptionResult {
  replies: Buffer[];
  outcome: OptionOutcome;
}

const CONTINUE: OptionOutcome = { kind: 'continue' };

/** TLS as one negotiation sees it: the mode in force on this connection and, once STARTTLS succeeded, the session. */
export interface NegotiationTls {
  mode: NbdTlsMode;
  /** Set on the negotiation that runs over TLS; its peer is who LUN masking will match. */
  session: TlsSessionInfo | undefined;
}

const NO_TLS: NegotiationTls = { mode: 'off', session: undefined };

const KNOWN_OPTIONS = new Set([
  C.NBD_OPT_EXPORT_NAME,
  C.NBD_OPT_ABORT,
  C.NBD_OPT_LIST,
  C.NBD_OPT_INFO,
  C.NBD_OPT_GO,
  C.NBD_OPT_STRUCTURED_REPLY,
  C.NBD_OPT_LIST_META_CONTEXT,
  C.NBD_OPT_SET_META_CONTEXT,
]);

export class ServerNegotiation {
  private structuredReplies = false;
  /** SET_META_CONTEXT's selection and the export it was made for. */
  private selection: { exportName: string; contexts: MetaContext[] } | undefined;

  constructor(
    private readonly options: ResolvedServerOptions,
    /** Client sent NBD_FLAG_C_NO_ZEROES: EXPORT_NAME's reply omits the 124 zeroes. */
    private readonly noZeroes: boolean,
    private readonly shuttingDown: () => boolean,
    readonly tls: NegotiationTls = NO_TLS,
  ) {}

  /** An option whose data exceeded the server's limit (already drained). */
  tooBig(option: number, length: number): OptionResult {
    const refused = this.tlsRefusal(option);
    if (refused) return refused;
    if (option === C.NBD_OPT_EXPORT_NAME) return { replies: [], outcome: { kind: 'disconnect', reason: `NBD_OPT_EXPORT_NAME of ${length} bytes` } };
    if (option === C.NBD_OPT_STARTTLS && this.tls.mode !== 'off') return this.error(option, C.NBD_REP_ERR_INVALID, 'NBD_OPT_STARTTLS takes no data');
    if (!KNOWN_OPTIONS.has(option)) return this.error(option, C.NBD_REP_ERR_UNSUP, `${optionName(option)} is not supported`);
    return this.error(option, C.NBD_REP_ERR_TOO_BIG, `${optionName(option)} data of ${length} bytes exceeds the server's limit`);
  }

  handle(option: number, data: Buffer): OptionResult {
    if (this.shuttingDown() && option !== C.NBD_OPT_ABORT) {
      if (option === C.NBD_OPT_EXPORT_NAME) return { replies: [], outcome: { kind: 'disconnect', reason: 'server shutting down' } };
      return this.error(option, C.NBD_REP_ERR_SHUTDOWN, 'server is shutting down');
    }
    const refused = this.tlsRefusal(option);
    if (refused) return refused;
    try {
      switch (option) {
        case C.NBD_OPT_EXPORT_NAME:
          return this.exportName(data);
        case C.NBD_OPT_ABORT:
          return { replies: [encodeOptionReply(option, C.NBD_REP_ACK)], outcome: { kind: 'abort' } };
        case C.NBD_OPT_LIST:
          return this.list(data);
        case C.NBD_OPT_INFO:
        case C.NBD_OPT_GO:
          return this.infoOrGo(option, data);
        case C.NBD_OPT_STRUCTURED_REPLY:
          if (data.length !== 0) return this.error(option, C.NBD_REP_ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
          this.structuredReplies = true;
          return this.ack(option);
        case C.NBD_OPT_LIST_META_CONTEXT:
        case C.NBD_OPT_SET_META_CONTEXT:
          return this.metaContext(option, data);
        case C.NBD_OPT_STARTTLS:
          return this.startTls(data);
        default:
          // PEEK_EXPORT (withdrawn), EXTENDED_HEADERS (not yet) and anything unknown.
          return this.error(option, C.NBD_REP_ERR_UNSUP, `${optionName(option)} is not supported`);
      }
    } catch (err) {
      if (err instanceof NbdWireError) {
        if (option === C.NBD_OPT_EXPORT_NAME) return { replies: [], outcome: { kind: 'disconnect', reason: err.message } };
        return this.error(option, C.NBD_REP_ERR_INVALID, err.message);
      }
      throw err;
    }
  }

  /** FORCEDTLS before TLS: only STARTTLS and ABORT are served. */
  private tlsRefusal(option: number): OptionResult | undefined {
    if (this.tls.mode !== 'require' || this.tls.session || option === C.NBD_OPT_STARTTLS || option === C.NBD_OPT_ABORT) return undefined;
    if (option === C.NBD_OPT_EXPORT_NAME) return { replies: [], outcome: { kind: 'disconnect', reason: 'NBD_OPT_EXPORT_NAME before STARTTLS (TLS is required)' } };
    return this.error(option, C.NBD_REP_ERR_TLS_REQD, 'TLS is required: send NBD_OPT_STARTTLS first');
  }

  private startTls(data: Buffer): OptionResult {
    const option = C.NBD_OPT_STARTTLS;
    // NOTLS: "does not support the NBD_OPT_STARTTLS option at all".
    if (this.tls.mode === 'off') return this.error(option, C.NBD_REP_ERR_UNSUP, 'TLS is not enabled on this server');
    if (this.tls.session) return this.error(option, C.NBD_REP_ERR_INVALID, 'TLS is already active');
    if (data.length !== 0) return this.error(option, C.NBD_REP_ERR_INVALID, 'NBD_OPT_STARTTLS takes no data');
    return { replies: [encodeOptionReply(option, C.NBD_REP_ACK)], outcome: { kind: 'starttls' } };
  }

  private exportName(data: Buffer): OptionResult {
    const name = decodeString(data, C.NBD_MAX_STRING, 'export name');
    const entry = this.lookup(name);
    if (!entry) return { replies: [], outcome: { kind: 'disconnect', reason: `NBD_OPT_EXPORT_NAME: no export '${name}'` } };
    const negotiated = this.negotiated(entry);
    return {
      replies: [encodeExportNameReply(negotiated.size, negotiated.transmissionFlags, this.noZeroes)],
      outcome: { kind: 'transmission', negotiated },
    };
  }

  private list(data: Buffer): OptionResult {
    if (data.length !== 0) return this.error(C.NBD_OPT_LIST, C.NBD_REP_ERR_INVALID, 'NBD_OPT_LIST takes no data');
    const replies: Buffer[] = [];
    for (const entry of this.options.exports.list(this.requester())) {
      try {
        replies.push(encodeOptionReply(C.NBD_OPT_LIST, C.NBD_REP_SERVER, encodeServerReply({ name: entry.name, description: exportDescription(entry) })));
      } catch {
        // A name the protocol cannot carry (over 4096 bytes) is left out of the list.
      }
    }
    replies.push(encodeOptionReply(C.NBD_OPT_LIST, C.NBD_REP_ACK));
    return { replies, outcome: CONTINUE };
  }

  private infoOrGo(option: number, data: Buffer): OptionResult {
    const req: GoRequest = decodeGoRequest(data);
    const entry = this.lookup(req.exportName);
    if (!entry) return this.error(option, C.NBD_REP_ERR_UNKNOWN, `no export '${req.exportName}'`);
    const negotiated = this.negotiated(entry);
    // One NBD_REP_INFO per item: NBD_INFO_EXPORT always, then each other known item asked for, once.
    const replies = [encodeOptionReply(option, C.NBD_REP_INFO, encodeInfoItem({ type: C.NBD_INFO_EXPORT, size: negotiated.size, transmissionFlags: negotiated.transmissionFlags }))];
    for (const type of new Set(req.infoRequests)) {
      let item: Buffer | undefined;
      if (type === C.NBD_INFO_NAME) item = encodeInfoItem({ type, name: entry.name });
      else if (type === C.NBD_INFO_DESCRIPTION) item = encodeInfoItem({ type, description: exportDescription(entry) });
      else if (type === C.NBD_INFO_BLOCK_SIZE) item = encodeInfoItem({ type, ...this.options.blockSize });
      if (item) replies.push(encodeOptionReply(option, C.NBD_REP_INFO, item));
    }
    replies.push(encodeOptionReply(option, C.NBD_REP_ACK));
    if (option === C.NBD_OPT_INFO) return { replies, outcome: CONTINUE };
    return { replies, outcome: { kind: 'transmission', negotiated } };
  }

  private metaContext(option: number, data: Buffer): OptionResult {
    const isSet = option === C.NBD_OPT_SET_META_CONTEXT;
    if (isSet && !this.structuredReplies) {
      return this.error(option, C.NBD_REP_ERR_INVALID, 'NBD_OPT_SET_META_CONTEXT needs NBD_OPT_STRUCTURED_REPLY first');
    }
    const req = decodeMetaContextRequest(data);
    const entry = this.lookup(req.exportName);
    if (!entry) return this.error(option, C.NBD_REP_ERR_UNKNOWN, `no export '${req.exportName}'`);
    const contexts = selectContexts(req.queries, isSet ? 'set' : 'list');
    if (isSet) this.selection = { exportName: entry.name, contexts };
    const replies = contexts.map((ctx) =>
      // LIST replies carry id 0 (reserved); SET replies carry the id BLOCK_STATUS will use.
      encodeOptionReply(option, C.NBD_REP_META_CONTEXT, encodeMetaContextReply({ id: isSet ? ctx.id : 0, name: ctx.name })),
    );
    replies.push(encodeOptionReply(option, C.NBD_REP_ACK));
    return { replies, outcome: CONTINUE };
  }

  private negotiated(entry: ExportEntry): NegotiatedExport {
    const metaContexts = this.structuredReplies && this.selection?.exportName === entry.name ? this.selection.contexts : [];
    return {
      entry,
      size: entry.volume.size,
      transmissionFlags: transmissionFlags(entry, this.structuredReplies),
      structuredReplies: this.structuredReplies,
      metaContexts,
    };
  }

  private lookup(name: string): ExportEntry | undefined {
    const resolved = name === '' && this.options.defaultExport !== undefined ? this.options.defaultExport : name;
    try {
      return this.options.exports.get(resolved, this.requester());
    } catch {
      return undefined;
    }
  }

  /** What the export provider may key masking on: the verified TLS peer, if any. */
  private requester(): ExportRequester {
    return { peer: this.tls.session?.peer };
  }

  private ack(option: number): OptionResult {
    return { replies: [encodeOptionReply(option, C.NBD_REP_ACK)], outcome: CONTINUE };
  }

  private error(option: number, type: number, message: string): OptionResult {
    return { replies: [encodeOptionReply(option, type, encodeErrorMessage(message))], outcome: CONTINUE };
  }
}

/** The export's description: its own, or the volume's identity token; cut to the protocol's string limit. */
export function exportDescription(entry: ExportEntry): string {
  let text: string;
  try {
    text = entry.description ?? formatIdentityDescription(entry.volume.identity());
  } catch {
    text = '';
  }
  return truncateUtf8(text, C.NBD_MAX_STRING).toString('utf8');
}
