/**
 * What `lunrig serve` runs on top of the pool. Each service is started in
 * list order and stopped in reverse; the NBD server joins SERVICES as
 * another entry.
 */
import { createControlServer } from '../control/server.js';
import type { Pool } from '../store/pool.js';

export interface ServiceOptions {
  control: { host: string; port: number };
}

export interface RunningService {
  name: string;
  /** Where clients reach it, e.g. http://127.0.0.1:10810 or nbd://127.0.0.1:10809. */
  url: string;
  stop(): Promise<void>;
}

export interface Service {
  name: string;
  start(pool: Pool, options: ServiceOptions): Promise<RunningService>;
}

export const controlApiService: Service = {
  name: 'control',
  async start(pool, options) {
    // Errors leave as JSON bodies; fastify logs only what the client was not told (5xx).
    const server = await createControlServer(pool, { ...options.control, logger: { level: 'error', stream: process.stderr } });
    return { name: 'control', url: server.url, stop: () => server.close() };
  },
};

export const SERVICES: readonly Service[] = [controlApiService];
