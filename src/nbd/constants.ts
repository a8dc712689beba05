/**
 * Every numeric constant of the NBD protocol (spec/nbd.md §2; proto.md and
 * libnbd's lib/nbd-protocol.h). All integers travel big-endian.
 */

// §2.1 Wire basics and magic numbers.
/** "NBDMAGIC", the first 8 bytes the server sends. */
export const NBD_INIT_PASSWD = 0x4e42444d41474943n;
/** "IHAVEOPT": server greeting (newstyle) and the start of every client option. */
export const NBD_OPTS_MAGIC = 0x49484156454f5054n;
/** Oldstyle magic; oldstyle is not supported (nbd >= 3.10 dropped it). Kept to recognise it. */
export const NBD_CLISERV_MAGIC = 0x00420281861253n;
/** Start of every option reply. */
export const NBD_REP_MAGIC = 0x0003e889045565a9n;
export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;
/** Extended headers (experimental): not negotiated by lunrig yet. */
export const NBD_EXTENDED_REQUEST_MAGIC = 0x21e41c71;
export const NBD_EXTENDED_REPLY_MAGIC = 0x6e8a278c;
/** Reserved / historic magics: never use them. */
export const NBD_RESERVED_MAGICS = [0x12560953, 0x96744668, 0x25609514] as const;

/** Strings (export names, messages, context names) are at most 4096 bytes (NBD_MAX_STRING). */
export const NBD_MAX_STRING = 4096;
export const NBD_DEFAULT_PORT = 10809;

// Wire sizes.
export const NBD_GREETING_SIZE = 18; // u64 NBDMAGIC | u64 IHAVEOPT | u16 handshake flags
export const NBD_CLIENT_FLAGS_SIZE = 4;
export const NBD_OPTION_HEADER_SIZE = 16; // u64 IHAVEOPT | u32 option | u32 length
export const NBD_OPTION_REPLY_HEADER_SIZE = 20; // u64 magic | u32 option | u32 type | u32 length
export const NBD_EXPORT_NAME_REPLY_SIZE = 10; // u64 size | u16 transmission flags
export const NBD_EXPORT_NAME_ZEROES = 124;
export const NBD_REQUEST_SIZE = 28;
export const NBD_SIMPLE_REPLY_SIZE = 16;
export const NBD_STRUCTURED_REPLY_SIZE = 20;

// §2.2 Handshake flags (server, u16).
export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;

// Client flags (u32).
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;

// Option types (u32).
export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_LIST = 3;
export const NBD_OPT_PEEK_EXPORT = 4;
export const NBD_OPT_STARTTLS = 5;
export const NBD_OPT_INFO = 6;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_OPT_LIST_META_CONTEXT = 9;
export const NBD_OPT_SET_META_CONTEXT = 10;
export const NBD_OPT_EXTENDED_HEADERS = 11;

// Option reply types (u32). Errors have bit 31 set.
export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_META_CONTEXT = 4;
export const NBD_REP_FLAG_ERROR = 0x80000000;
export const NBD_REP_ERR_UNSUP = NBD_REP_FLAG_ERROR + 1;
export const NBD_REP_ERR_POLICY = NBD_REP_FLAG_ERROR + 2;
export const NBD_REP_ERR_INVALID = NBD_REP_FLAG_ERROR + 3;
export const NBD_REP_ERR_PLATFORM = NBD_REP_FLAG_ERROR + 4;
export const NBD_REP_ERR_TLS_REQD = NBD_REP_FLAG_ERROR + 5;
export const NBD_REP_ERR_UNKNOWN = NBD_REP_FLAG_ERROR + 6;
export const NBD_REP_ERR_SHUTDOWN = NBD_REP_FLAG_ERROR + 7;
export const NBD_REP_ERR_BLOCK_SIZE_REQD = NBD_REP_FLAG_ERROR + 8;
export const NBD_REP_ERR_TOO_BIG = NBD_REP_FLAG_ERROR + 9;
export const NBD_REP_ERR_EXT_HEADER_REQD = NBD_REP_FLAG_ERROR + 10;

// Info types (u16, inside NBD_REP_INFO; exactly one item per reply).
export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_NAME = 1;
export const NBD_INFO_DESCRIPTION = 2;
export const NBD_INFO_BLOCK_SIZE = 3;
/** Payload lengths of the fixed-size info replies (including the u16 type). */
export const NBD_INFO_EXPORT_LENGTH = 12;
export const NBD_INFO_BLOCK_SIZE_LENGTH = 14;

// §2.3 Transmission flags (u16).
export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_FUA = 1 << 3;
export const NBD_FLAG_ROTATIONAL = 1 << 4;
export const NBD_FLAG_SEND_TRIM = 1 << 5;
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;
export const NBD_FLAG_SEND_RESIZE = 1 << 9;
export const NBD_FLAG_SEND_CACHE = 1 << 10;
export const NBD_FLAG_SEND_FAST_ZERO = 1 << 11;
export const NBD_FLAG_BLOCK_STATUS_PAYLOAD = 1 << 12;

// §2.4 Command types (u16).
export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_CACHE = 5;
export const NBD_CMD_WRITE_ZEROES = 6;
export const NBD_CMD_BLOCK_STATUS = 7;
export const NBD_CMD_RESIZE = 8;

// Command flags (u16).
export const NBD_CMD_FLAG_FUA = 1 << 0;
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1;
export const NBD_CMD_FLAG_DF = 1 << 2;
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3;
export const NBD_CMD_FLAG_FAST_ZERO = 1 << 4;
export const NBD_CMD_FLAG_PAYLOAD_LEN = 1 << 5;

// Structured reply flags and chunk types.
export const NBD_REPLY_FLAG_DONE = 1 << 0;
export const NBD_REPLY_TYPE_NONE = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
/** 5, as in the spec, libnbd, qemu and nbdkit; the reference nbd.h wrongly says 3. */
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5;
export const NBD_REPLY_TYPE_BLOCK_STATUS_EXT = 6;
export const NBD_REPLY_TYPE_ERROR_BIT = 1 << 15;
export const NBD_REPLY_TYPE_ERROR = NBD_REPLY_TYPE_ERROR_BIT + 1;
export const NBD_REPLY_TYPE_ERROR_OFFSET = NBD_REPLY_TYPE_ERROR_BIT + 2;

// §2.5 Error values (u32).
export const NBD_SUCCESS = 0;
export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

// §2.6 Size constraints: the defaults a client assumes when none are advertised.
export const NBD_DEFAULT_MINIMUM_BLOCK_SIZE = 1;
export const NBD_DEFAULT_PREFERRED_BLOCK_SIZE = 4096;
export const NBD_DEFAULT_MAXIMUM_PAYLOAD = 32 * 1024 * 1024;
/** Largest advertisable minimum block size. */
export const NBD_MAX_MINIMUM_BLOCK_SIZE = 64 * 1024;
/** Payloads up to 2^25 bytes SHOULD NOT be treated as a denial of service. */
export const NBD_PORTABLE_PAYLOAD_LIMIT = 2 ** 25;
/** DF reads up to this length MUST be honoured unfragmented. */
export const NBD_DF_MINIMUM = 64 * 1024;

// §2.7 Metadata contexts.
export const NBD_META_CONTEXT_BASE_ALLOCATION = 'base:allocation';
export const NBD_STATE_HOLE = 1 << 0;
export const NBD_STATE_ZERO = 1 << 1;
/** qemu:dirty-bitmap:<name> uses bit 0 for dirty. */
export const NBD_STATE_DIRTY = 1 << 0;
/** Servers SHOULD send at most 2^20 extents per BLOCK_STATUS chunk. */
export const NBD_MAX_EXTENTS = 2 ** 20;
