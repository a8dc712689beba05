/**
 * Shared by the NBD unit tests: an in-process server on a unix socket in a
 * temp dir over MemoryVolumes, and a raw protocol connection for handshake
 * and malformed-input tests.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as C from '../../../src/nbd/constants.js';
import { ExportRegistry, type ExportEntry } from '../../../src/nbd/export-provider.js';
import { decodeOptionReplyHeader, encodeClientFlags, encodeOption } from '../../../src/nbd/handshake-codec.js';
import { encodeGoRequest, encodeMetaContextRequest } from '../../../src/nbd/option-data-codec.js';
import { encodeRequestHeader, type RequestHeader } from '../../../src/nbd/request-codec.js';
import { NbdServer } from '../../../src/nbd/server.js';
import type { NbdServerOptions } from '../../../src/nbd/server-options.js';
import { SocketReader } from '../../../src/nbd/socket-reader.js';
import { MemoryVolume } from '../../../src/volume/memory-volume.js';
import type { Extent, Volume, VolumeIdentity, WriteOptions, WriteZeroesOptions } from '../../../src/volume/volume.js';

export const MiB = 1024 * 1024;

export interface TestServer {
  server: NbdServer;
  registry: ExportRegistry;
  volume: MemoryVolume;
  path: string;
  dir: string;
  close(): Promise<void>;
}

/** A server on a unix socket with one writable export 'disk0' (16 MiB MemoryVolume) unless `exports` is given. */
export async function startServer(opts: { exports?: ExportEntry[]; server?: Partial<NbdServerOptions>; size?: number } = {}): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'lunrig-nbd-'));
  const path = join(dir, 'nbd.sock');
  const volume = new MemoryVolume({ size: opts.size ?? 16 * MiB, identity: { name: 'disk0' } });
  const registry = new ExportRegistry(opts.exports ?? [{ name: 'disk0', volume }]);
  const server = new NbdServer({ ...opts.server, exports: registry });
  await server.listen({ path });
  return {
    server,
    registry,
    volume,
    path,
    dir,
    async close() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface OptionReply {
  option: number;
  type: number;
  data: Buffer;
}

/** A raw client socket: write bytes, read exact lengths, see the end. */
export class RawConnection {
  readonly reader: SocketReader;
  readonly closed: Promise<void>;
  private ended = false;

  private constructor(readonly socket: net.Socket) {
    this.reader = new SocketReader(socket);
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.ended = true;
        resolve();
      }),
    );
  }

  static async open(path: string): Promise<RawConnection> {
    const socket = net.connect({ path });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawConnection(socket);
  }

  get isClosed(): boolean {
    return this.ended;
  }

  write(b: Uint8Array): void {
    this.socket.write(b);
  }

  read(n: number): Promise<Buffer> {
    return this.reader.read(n);
  }

  /** Read the greeting and send client flags (default FIXED_NEWSTYLE | NO_ZEROES). */
  async greet(clientFlags = C.NBD_FLAG_C_FIXED_NEWSTYLE | C.NBD_FLAG_C_NO_ZEROES): Promise<Buffer> {
    const g = await this.read(C.NBD_GREETING_SIZE);
    this.write(encodeClientFlags(clientFlags));
    return g;
  }

  async readOptionReply(): Promise<OptionReply> {
    const h = decodeOptionReplyHeader(await this.read(C.NBD_OPTION_REPLY_HEADER_SIZE));
    return { option: h.option, type: h.type, data: await this.read(h.length) };
  }

  /** Send an option and collect replies up to the final one (ACK or an error). */
  async option(option: number, data: Uint8Array = Buffer.alloc(0)): Promise<OptionReply[]> {
    this.write(encodeOption(option, data));
    return this.readUntilFinal();
  }

  async readUntilFinal(): Promise<OptionReply[]> {
    const out: OptionReply[] = [];
    for (;;) {
      const r = await this.readOptionReply();
      out.push(r);
      if (r.type === C.NBD_REP_ACK || (r.type & C.NBD_REP_FLAG_ERROR) !== 0) return out;
    }
  }

  /** Full handshake to transmission: optional structured replies + base:allocation, then GO. */
  async attach(exportName: string, o: { structured?: boolean; metaContext?: boolean } = {}): Promise<{ size: number; flags: number }> {
    await this.greet();
    if (o.structured) await this.option(C.NBD_OPT_STRUCTURED_REPLY);
    if (o.structured && o.metaContext) {
      await this.option(C.NBD_OPT_SET_META_CONTEXT, encodeMetaContextRequest({ exportName, queries: ['base:allocation'] }));
    }
    const replies = await this.option(C.NBD_OPT_GO, encodeGoRequest({ exportName, infoRequests: [] }));
    const last = replies[replies.length - 1]!;
    if (last.type !== C.NBD_REP_ACK) throw new Error(`GO failed: 0x${last.type.toString(16)} ${last.data.toString()}`);
    const info = replies.find((r) => r.type === C.NBD_REP_INFO && r.data.readUInt16BE(0) === C.NBD_INFO_EXPORT)!;
    return { size: Number(info.data.readBigUInt64BE(2)), flags: info.data.readUInt16BE(10) };
  }

  sendRequest(req: Partial<RequestHeader> & { type: number }, payload?: Uint8Array): void {
    const header = encodeRequestHeader({ flags: 0, cookie: 1n, offset: 0, length: payload?.length ?? 0, ...req });
    this.write(payload ? Buffer.concat([header, payload]) : header);
  }

  /** Read a 16-byte simple reply. */
  async simpleReply(): Promise<{ magic: number; error: number; cookie: bigint }> {
    const b = await this.read(C.NBD_SIMPLE_REPLY_SIZE);
    return { magic: b.readUInt32BE(0), error: b.readUInt32BE(4), cookie: b.readBigUInt64BE(8) };
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Wait for the server to close the connection, failing after `ms`. */
  async expectClosed(ms = 2000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.closed,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`connection still open after ${ms} ms`)), ms);
      }),
    ]);
    clearTimeout(timer);
  }
}

/** A Volume wrapper whose operations wait for `gate(op, offset)` before running: for out-of-order tests. */
export class GatedVolume implements Volume {
  constructor(
    readonly inner: Volume,
    private readonly gate: (op: string, offset: number) => Promise<void>,
  ) {}
  get size(): number {
    return this.inner.size;
  }
  get readOnly(): boolean {
    return this.inner.readOnly;
  }
  identity(): VolumeIdentity {
    return this.inner.identity();
  }
  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    await this.gate('read', offset);
    return this.inner.read(offset, length, into);
  }
  async write(offset: number, data: Uint8Array, o?: WriteOptions): Promise<void> {
    await this.gate('write', offset);
    return this.inner.write(offset, data, o);
  }
  async writeZeroes(offset: number, length: number, o?: WriteZeroesOptions): Promise<void> {
    await this.gate('writeZeroes', offset);
    return this.inner.writeZeroes(offset, length, o);
  }
  async trim(offset: number, length: number, o?: WriteOptions): Promise<void> {
    await this.gate('trim', offset);
    return this.inner.trim(offset, length, o);
  }
  async flush(): Promise<void> {
    await this.gate('flush', 0);
    return this.inner.flush();
  }
  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    await this.gate('blockStatus', offset);
    return this.inner.blockStatus(offset, length);
  }
}

export { pattern } from '../../helpers/patterns.js';

/** Poll until `cond` holds; fail after `ms`. */
export async function waitFor(cond: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
