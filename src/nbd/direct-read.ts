/**
 * Reading a socket into buffers the caller picks, read by read: Node's
 * `onread: { buffer, callback }` mode of net.Socket, where libuv reads
 * straight into the given memory and no 'data' event (and no Node-allocated
 * chunk) exists. The NBD server uses it to let the kernel put a WRITE payload
 * directly into its I/O slot (DESIGN.md io/: "read WRITE payloads from the
 * socket straight into their slot"), and everything else into a receive pool
 * it carves itself.
 *
 * THE ONE NODE INTERNAL of the NBD server lives here. `onread` is public API
 * only where a socket is created (`net.connect`, `new net.Socket`); a server's
 * sockets are created by Node. This function switches the same mode on for an
 * existing socket by doing what the Socket constructor and initSocketHandle do
 * with `onread` whose `buffer` is a function (Node 20 lib/net.js): set the
 * three symbol-keyed fields kBuffer, kBufferCb and kBufferGen (found by their
 * descriptions) and call `_handle.useUserBuffer(first)`. From then on Node's
 * own `onread` code runs: onStreamRead calls the callback with (nread, buffer)
 * and installs whatever the generator returns as the next read's buffer;
 * Socket.pause()/resume() stop and restart reading; 'end' and 'close' come as
 * usual.
 *
 * When the internals are not what this expects (another Node, a TLS socket,
 * data already buffered in the stream) it changes nothing and returns false,
 * and the caller keeps reading 'data' events: the ordinary path. The guard
 * test (test/unit/nbd/fast-path-direct-read.test.ts) fails when Node changes.
 */
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

export interface DirectReadSink {
  /** Where the next read may land (at least one byte); called once up front and after every read. */
  next(): Uint8Array;
  /** `nread` (> 0) bytes arrived at the start of `buffer`, the view `next()` returned last. */
  onRead(nread: number, buffer: Uint8Array): void;
}

interface StreamHandle {
  useUserBuffer?: (buffer: Uint8Array) => void;
}

type Fields = Record<symbol, unknown>;

/** The symbol-keyed field of `socket` whose description is `name`, when there is exactly one. */
function field(socket: Socket, name: string): symbol | undefined {
  const found = Object.getOwnPropertySymbols(socket).filter((s) => s.description === name);
  return found.length === 1 ? found[0] : undefined;
}

/**
 * Switch `socket` to reading into the sink's buffers. Call it where no read is
 * pending delivery (in a 'data' handler, or before the first read): bytes the
 * stream already buffered would otherwise be skipped, so a socket holding any
 * makes this return false.
 */
export function enableDirectReads(socket: Socket, sink: DirectReadSink): boolean {
  if (!(socket instanceof Socket) || socket instanceof TLSSocket) return false;
  if (socket.destroyed || socket.connecting || socket.readableLength > 0 || socket.readableEnded) return false;
  const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle;
  if (!handle || typeof handle.useUserBuffer !== 'function') return false;
  const kBuffer = field(socket, 'kBuffer');
  const kBufferCb = field(socket, 'kBufferCb');
  const kBufferGen = field(socket, 'kBufferGen');
  if (!kBuffer || !kBufferCb || !kBufferGen) return false;
  const f = socket as unknown as Fields;
  // Null until `onread` was given: anything else means the layout changed or the mode is on already.
  if (f[kBuffer] !== null || f[kBufferCb] !== null || f[kBufferGen] !== null) return false;
  const first = sink.next();
  f[kBuffer] = first;
  f[kBufferGen] = (): Uint8Array => sink.next();
  // Returning anything but `false` keeps the handle reading.
  f[kBufferCb] = (nread: number, buffer: Uint8Array): void => sink.onRead(nread, buffer);
  try {
    handle.useUserBuffer.call(handle, first);
  } catch {
    f[kBuffer] = null;
    f[kBufferGen] = null;
    f[kBufferCb] = null;
    return false;
  }
  return true;
}
