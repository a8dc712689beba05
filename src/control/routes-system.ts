import type { RouteModule } from './routes.js';
import { SystemInfo, errorResponses } from './schemas.js';

export const systemRoutes: RouteModule = async (app, { model }) => {
  app.get(
    '/system',
    { schema: { operationId: 'getSystem', summary: 'The storage server: version, serial, LSSs', tags: ['system'], response: { 200: SystemInfo, ...errorResponses } } },
    async () => {
      const { version, dir, serial, poolId, lunCount, lssList } = model.info();
      return { version, apiVersion: 'v1' as const, pool: { dir, serial, poolId, lunCount, lssList } };
    },
  );
};
