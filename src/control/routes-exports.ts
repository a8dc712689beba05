import { describeExports, type NbdEndpoints } from '../nbd/pool-exports.js';
import type { RouteModule } from './routes.js';
import { ExportList, LunInfo, LunNameParams, UpdateLunBody, errorResponses } from './schemas.js';

/**
 * NBD exports: every LUN is one, named after it (src/nbd/pool-exports.ts).
 * `nbd` says where the NBD server listens; it is read per request because
 * the server may start after the control API.
 */
export function exportRoutes(nbd: () => NbdEndpoints): RouteModule {
  return async (app, { model }) => {
    app.get(
      '/exports',
      { schema: { operationId: 'listExports', summary: 'List NBD exports (one per LUN) with the URIs that reach them', tags: ['exports'], response: { 200: ExportList, ...errorResponses } } },
      async () => ({ exports: describeExports(model.listLuns(), nbd()) }),
    );

    // A LUN route, kept beside the exports because read-only is what `lunrig export set` changes.
    app.patch(
      '/luns/:name',
      {
        schema: {
          operationId: 'updateLun',
          summary: 'Change a LUN in place: read-only or read-write',
          tags: ['luns'],
          params: LunNameParams,
          body: UpdateLunBody,
          response: { 200: LunInfo, ...errorResponses },
        },
      },
      async (request) => {
        const { name } = request.params;
        const { readOnly } = request.body;
        return readOnly === undefined ? model.lunInfo(name) : model.setReadOnly(name, readOnly);
      },
    );
  };
}
