/**
 * The control API speaks JSON only. fastify's default JSON parser (with its
 * prototype-poisoning checks) stays, but an empty body counts as no body, so
 * `curl -X DELETE -H 'content-type: application/json'` works; and the
 * text/plain parser goes, so a non-JSON body is 415, not a schema error.
 */
import type { FastifyInstance } from 'fastify';

export function acceptJsonOnly(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') {
      done(null, undefined);
      return;
    }
    parseJson(request, body as string, done);
  });
}
