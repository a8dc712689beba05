import { Type } from '@fastify/type-provider-typebox';
import type { RouteModule } from './routes.js';
import { CreateLunBody, GrowLunBody, LunDetail, LunInfo, LunList, LunNameParams, errorResponses } from './schemas.js';

/** LUN provisioning. Handlers only translate; the array model validates and decides. */
export const lunRoutes: RouteModule = async (app, { model }) => {
  const tags = ['luns'];

  app.get('/luns', { schema: { operationId: 'listLuns', summary: 'List LUNs', tags, response: { 200: LunList, ...errorResponses } } }, async () => ({ luns: model.listLuns() }));

  app.post(
    '/luns',
    { schema: { operationId: 'createLun', summary: 'Create a LUN (sparse)', tags, body: CreateLunBody, response: { 201: LunInfo, ...errorResponses } } },
    async (request, reply) => {
      const info = await model.createLun(request.body);
      return reply.status(201).header('location', `${app.prefix}/luns/${encodeURIComponent(info.name)}`).send(info);
    },
  );

  app.get(
    '/luns/:name',
    { schema: { operationId: 'getLun', summary: 'Describe a LUN, with the space it occupies', tags, params: LunNameParams, response: { 200: LunDetail, ...errorResponses } } },
    async (request) => {
      const info = model.lunInfo(request.params.name);
      return { ...info, ...(await model.lunUsage(info.name)) };
    },
  );

  app.post(
    '/luns/:name/grow',
    { schema: { operationId: 'growLun', summary: 'Grow a LUN (shrinking is refused)', tags, params: LunNameParams, body: GrowLunBody, response: { 200: LunInfo, ...errorResponses } } },
    async (request) => model.growLun(request.params.name, request.body.size),
  );

  app.delete(
    '/luns/:name',
    { schema: { operationId: 'deleteLun', summary: 'Delete a LUN and its data', tags, params: LunNameParams, response: { 204: Type.Null({ description: 'deleted' }), ...errorResponses } } },
    async (request, reply) => {
      await model.deleteLun(request.params.name);
      return reply.status(204).send(null);
    },
  );
};
