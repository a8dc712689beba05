import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { ControlModel } from './model.js';

/**
 * A route module: a fastify plugin registered under /v1 with the array model.
 * FlashCopy, PPRC and multipath routes are further modules of this type.
 */
export type RouteModule = FastifyPluginAsyncTypebox<{ model: ControlModel }>;
