/**
 * The client's side of the fixed-newstyle handshake: structured replies, meta
 * contexts, NBD_OPT_GO with block sizes, name and description (falling back to
 * NBD_OPT_EXPORT_NAME for servers without GO), NBD_OPT_LIST, and the
 * NBD_OPT_STARTTLS exchange (the upgrade itself is in tls-client.ts).
 */
import { LunrigError } from '../errors.js';
import * as C from './constants.js';
import {
  decodeExportNameReply,
  decodeGreeting,
  decodeOptionReplyHeader,
  encodeClientFlags,
  encodeOption,
  isOptionReplyError,
  type OptionReplyHeader,
} from './handshake-codec.js';
import {
  decodeInfoItem,
  decodeMetaContextReply,
  decodeServerReply,
  encodeGoRequest,
  encodeMetaContextRequest,
  type BlockSizeConstraints,
  type ExportListing,
} from './option-data-codec.js';
import { optionName, optionReplyName } from './protocol-names.js';
import type { SocketReader } from './socket-reader.js';
import { NbdWireError, encodeString } from './wire.js';

export interface ClientHandshakeOptions {
  exportName: string;
  structuredReplies: boolean;
  metaContexts: readonly string[];
}

export interface HandshakeResult {
  size: number;
  transmissionFlags: number;
  structuredReplies: boolean;
  /** Negotiated context name -> id. */
  metaContexts: Map<string, number>;
  /** Advertised by the server, or undefined (then the protocol defaults apply). */
  blockSize: BlockSizeConstraints | undefined;
  canonicalName: string | undefined;
  description: string | undefined;
}

/** Largest option reply payload the client accepts (NBD_REP_SERVER: two strings of at most 4 KiB). */
const MAX_OPTION_REPLY = 64 * 1024;

type Write = (b: Buffer) => void;

interface OptionReply extends OptionReplyHeader {
  data: Buffer;
}

/** Greeting and client flags: common to every session. Returns whether NO_ZEROES is in effect. */
export async function openSession(reader: SocketReader, write: Write): Promise<{ noZeroes: boolean }> {
  const { handshakeFlags } = decodeGreeting(await reader.read(C.NBD_GREETING_SIZE));
  if (!(handshakeFlags & C.NBD_FLAG_FIXED_NEWSTYLE)) throw new LunrigError('NOT_SUPPORTED', 'NBD server does not speak fixed newstyle negotiation');
  const noZeroes = (handshakeFlags & C.NBD_FLAG_NO_ZEROES) !== 0;
  write(encodeClientFlags(C.NBD_FLAG_C_FIXED_NEWSTYLE | (noZeroes ? C.NBD_FLAG_C_NO_ZEROES : 0)));
  return { noZeroes };
}

async function readOptionReply(reader: SocketReader, option: number): Promise<OptionReply> {
  const h = decodeOptionReplyHeader(await reader.read(C.NBD_OPTION_REPLY_HEADER_SIZE));
  if (h.option !== option) throw new NbdWireError(`reply to ${optionName(h.option)} while waiting for ${optionName(option)}`);
  if (h.length > MAX_OPTION_REPLY) throw new NbdWireError(`option reply of ${h.length} bytes`);
  return { ...h, data: await reader.read(h.length) };
}

function replyError(option: number, reply: OptionReply): LunrigError {
  const message = reply.data.toString('utf8');
  const code =
    reply.type === C.NBD_REP_ERR_UNKNOWN
      ? 'LUN_NOT_FOUND'
      : reply.type === C.NBD_REP_ERR_SHUTDOWN
        ? 'CLOSED'
        : reply.type === C.NBD_REP_ERR_UNSUP || reply.type === C.NBD_REP_ERR_TLS_REQD
          ? 'NOT_SUPPORTED'
          : 'IO_ERROR';
  const hint = reply.type === C.NBD_REP_ERR_TLS_REQD ? ' (the server requires TLS: connect with the tls option)' : '';
  return new LunrigError(code, `${optionName(option)}: ${optionReplyName(reply.type)}${message ? `: ${message}` : ''}${hint}`, { replyType: reply.type });
}

/**
 * NBD_OPT_STARTTLS: undefined when acknowledged (the caller MUST upgrade at
 * once), else how the server declined it (e.g. "NBD_REP_ERR_UNSUP: ...").
 */
export async function requestStartTls(reader: SocketReader, write: Write): Promise<string | undefined> {
  write(encodeOption(C.NBD_OPT_STARTTLS));
  const r = await readOptionReply(reader, C.NBD_OPT_STARTTLS);
  if (r.type === C.NBD_REP_ACK) {
    if (r.data.length !== 0) throw new NbdWireError('NBD_OPT_STARTTLS acknowledged with data');
    return undefined;
  }
  if (isOptionReplyError(r.type)) return `${optionReplyName(r.type)}${r.data.length ? `: ${r.data.toString('utf8')}` : ''}`;
  throw new NbdWireError(`unexpected ${optionReplyName(r.type)} to NBD_OPT_STARTTLS`);
}

export async function negotiateExport(reader: SocketReader, write: Write, noZeroes: boolean, o: ClientHandshakeOptions): Promise<HandshakeResult> {
  encodeString(o.exportName, C.NBD_MAX_STRING, 'export name'); // refuse early, before anything is sent
  let structuredReplies = false;
  if (o.structuredReplies) {
    write(encodeOption(C.NBD_OPT_STRUCTURED_REPLY));
    const r = await readOptionReply(reader, C.NBD_OPT_STRUCTURED_REPLY);
    structuredReplies = r.type === C.NBD_REP_ACK;
  }

  const metaContexts = new Map<string, number>();
  if (structuredReplies && o.metaContexts.length > 0) {
    write(encodeOption(C.NBD_OPT_SET_META_CONTEXT, encodeMetaContextRequest({ exportName: o.exportName, queries: [...o.metaContexts] })));
    for (;;) {
      const r = await readOptionReply(reader, C.NBD_OPT_SET_META_CONTEXT);
      if (r.type === C.NBD_REP_META_CONTEXT) {
        const ctx = decodeMetaContextReply(r.data);
        metaContexts.set(ctx.name, ctx.id);
      } else if (r.type === C.NBD_REP_ACK) break;
      else if (isOptionReplyError(r.type)) {
        if (r.type === C.NBD_REP_ERR_UNKNOWN) throw replyError(C.NBD_OPT_SET_META_CONTEXT, r);
        metaContexts.clear(); // contexts are optional: go on without them
        break;
      } else throw new NbdWireError(`unexpected ${optionReplyName(r.type)} to NBD_OPT_SET_META_CONTEXT`);
    }
  }

  write(encodeOption(C.NBD_OPT_GO, encodeGoRequest({ exportName: o.exportName, infoRequests: [C.NBD_INFO_BLOCK_SIZE, C.NBD_INFO_NAME, C.NBD_INFO_DESCRIPTION] })));
  let exportInfo: { size: number; transmissionFlags: number } | undefined;
  let blockSize: BlockSizeConstraints | undefined;
  let canonicalName: string | undefined;
  let description: string | undefined;
  for (;;) {
    const r = await readOptionReply(reader, C.NBD_OPT_GO);
    if (r.type === C.NBD_REP_INFO) {
      const item = decodeInfoItem(r.data);
      if (item.type === C.NBD_INFO_EXPORT) exportInfo = { size: item.size, transmissionFlags: item.transmissionFlags };
      else if (item.type === C.NBD_INFO_BLOCK_SIZE) blockSize = { minimum: item.minimum, preferred: item.preferred, maximum: item.maximum };
      else if (item.type === C.NBD_INFO_NAME) canonicalName = item.name;
      else if (item.type === C.NBD_INFO_DESCRIPTION) description = item.description;
    } else if (r.type === C.NBD_REP_ACK) {
      if (!exportInfo) throw new NbdWireError('NBD_OPT_GO acknowledged without NBD_INFO_EXPORT');
      return { ...exportInfo, structuredReplies, metaContexts, blockSize, canonicalName, description };
    } else if (r.type === C.NBD_REP_ERR_UNSUP) {
      // An old server: NBD_OPT_EXPORT_NAME has no error path, a refusal closes the connection.
      write(encodeOption(C.NBD_OPT_EXPORT_NAME, Buffer.from(o.exportName, 'utf8')));
      let reply: Buffer;
      try {
        reply = await reader.read(C.NBD_EXPORT_NAME_REPLY_SIZE + (noZeroes ? 0 : C.NBD_EXPORT_NAME_ZEROES));
      } catch (err) {
        throw new LunrigError('LUN_NOT_FOUND', `NBD server refused export '${o.exportName}' (NBD_OPT_EXPORT_NAME)`, undefined, { cause: err });
      }
      // Structured replies and contexts negotiated before still hold with EXPORT_NAME.
      return { ...decodeExportNameReply(reply), structuredReplies, metaContexts, blockSize: undefined, canonicalName: undefined, description: undefined };
    } else if (isOptionReplyError(r.type)) {
      throw replyError(C.NBD_OPT_GO, r);
    } else throw new NbdWireError(`unexpected ${optionReplyName(r.type)} to NBD_OPT_GO`);
  }
}

export async function listExports(reader: SocketReader, write: Write): Promise<ExportListing[]> {
  write(encodeOption(C.NBD_OPT_LIST));
  const out: ExportListing[] = [];
  for (;;) {
    const r = await readOptionReply(reader, C.NBD_OPT_LIST);
    if (r.type === C.NBD_REP_SERVER) out.push(decodeServerReply(r.data));
    else if (r.type === C.NBD_REP_ACK) return out;
    else if (isOptionReplyError(r.type)) throw replyError(C.NBD_OPT_LIST, r);
    else throw new NbdWireError(`unexpected ${optionReplyName(r.type)} to NBD_OPT_LIST`);
  }
}

/** NBD_OPT_ABORT; the server's ACK is optional (older servers just close). */
export async function abortSession(reader: SocketReader, write: Write): Promise<void> {
  write(encodeOption(C.NBD_OPT_ABORT));
  await readOptionReply(reader, C.NBD_OPT_ABORT).catch(() => undefined);
}
