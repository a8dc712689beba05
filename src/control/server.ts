/** The control API listening on TCP; 127.0.0.1 unless told otherwise (DESIGN.md: safe defaults). */
import type { AddressInfo } from 'node:net';
import { fromSystemError } from '../errors.js';
import { buildControlApp, type ControlAppOptions } from './app.js';
import { DEFAULT_CONTROL_HOST, DEFAULT_CONTROL_PORT, controlUrl } from './defaults.js';
import type { ControlModel } from './model.js';

export interface ControlServerOptions extends ControlAppOptions {
  host?: string;
  /** 0 picks a free port; read the chosen one from `address`. */
  port?: number;
}

export interface ControlServer {
  url: string;
  address: { host: string; port: number };
  close(): Promise<void>;
}

export async function createControlServer(model: ControlModel, options: ControlServerOptions = {}): Promise<ControlServer> {
  const { host = DEFAULT_CONTROL_HOST, port = DEFAULT_CONTROL_PORT, ...appOptions } = options;
  const app = await buildControlApp(model, appOptions);
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close();
    throw fromSystemError(err, `control API cannot listen on ${controlUrl({ host, port })}`);
  }
  const bound = app.server.address() as AddressInfo;
  const address = { host: bound.address, port: bound.port };
  return { url: controlUrl(address), address, close: () => app.close() };
}
