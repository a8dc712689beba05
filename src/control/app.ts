/**
 * The control API as a fastify app, not yet listening (tests use `inject`).
 * Versioned routes live in route modules registered under /v1; add a module
 * to V1_ROUTES (or pass `routes`) to extend the API.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { NbdEndpoints } from '../nbd/pool-exports.js';
import { handleError, handleNotFound } from './error-reply.js';
import type { ControlModel } from './model.js';
import { acceptJsonOnly } from './json-body.js';
import { registerOpenApi } from './openapi.js';
import type { RouteModule } from './routes.js';
import { exportRoutes } from './routes-exports.js';
import { lunRoutes } from './routes-luns.js';
import { systemRoutes } from './routes-system.js';
import { ErrorBody } from './schemas.js';

export const V1_ROUTES: readonly RouteModule[] = [systemRoutes, lunRoutes];

/** Control requests are small JSON documents; anything bigger is a mistake or an attack. */
export const BODY_LIMIT = 64 * 1024;

export interface ControlAppOptions {
  /** Extra route modules under /v1 (after the built-in ones). */
  routes?: readonly RouteModule[];
  /** fastify logger setting; off by default. */
  logger?: FastifyServerOptions['logger'];
  /** Where the NBD server listens, for GET /v1/exports (default: nowhere, the URIs are empty). */
  nbd?: () => NbdEndpoints;
}

export async function buildControlApp(model: ControlModel, options: ControlAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: BODY_LIMIT,
    // Reject what the schema does not name, and never coerce: '12' is not a boolean.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
    frameworkErrors: handleError,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setErrorHandler(handleError);
  app.setNotFoundHandler(handleNotFound);
  acceptJsonOnly(app);
  app.addSchema(ErrorBody);
  await registerOpenApi(app);
  const nbd = options.nbd ?? (() => ({}));
  for (const routes of [...V1_ROUTES, exportRoutes(nbd), ...(options.routes ?? [])]) await app.register(routes, { prefix: '/v1', model });
  await app.ready();
  return app;
}
