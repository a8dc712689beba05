/**
 * Every failure the control API answers, whether the array model refused the
 * request or fastify could not take it (bad JSON, schema, route, media type,
 * size), leaves as `{ error: { code, message, details? } }` with the status
 * HTTP_STATUS[code]. Unexpected errors become INTERNAL without their message
 * or stack, which go to the server log instead.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { LunrigError, isLunrigError, type ErrorCode } from '../errors.js';
import { HTTP_STATUS } from './http-status.js';
import type { ErrorBodyT } from './schemas.js';

/** fastify's own request errors, by their code, as the client sees them. */
const FASTIFY_ERRORS: Readonly<Record<string, [ErrorCode, string]>> = {
  FST_ERR_CTP_INVALID_JSON_BODY: ['INVALID_ARGUMENT', 'request body is not valid JSON'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['INVALID_ARGUMENT', 'request body is empty'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['INVALID_ARGUMENT', 'request body length does not match Content-Length'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['UNSUPPORTED_MEDIA_TYPE', 'request bodies must be application/json'],
  FST_ERR_CTP_BODY_TOO_LARGE: ['PAYLOAD_TOO_LARGE', 'request body is too large'],
};

type ValidationIssue = { instancePath?: string; message?: string };

/** Turn whatever a request produced into the LunrigError the client will see. */
export function toLunrigError(err: unknown): LunrigError {
  if (isLunrigError(err)) return err;
  const fe = err as Partial<FastifyError> | undefined;
  if (Array.isArray(fe?.validation)) return fromValidation(fe.validation as ValidationIssue[], fe.validationContext, fe.message);
  const known = fe?.code !== undefined ? FASTIFY_ERRORS[fe.code] : undefined;
  if (known) return new LunrigError(known[0], known[1]);
  // Any other client error fastify raises (bad URL encoding, parameter too long, ...).
  const status = fe?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return new LunrigError('INVALID_ARGUMENT', lowerFirst(fe?.message ?? 'bad request'));
  return new LunrigError('INTERNAL', 'internal error; see the server log');
}

/**
 * A schema violation is INVALID_ARGUMENT, except one about `size`: that is an
 * unusable size, the same INVALID_SIZE the array model gives for '10X' or 0.
 */
function fromValidation(issues: ValidationIssue[], context: string | undefined, message: string | undefined): LunrigError {
  const where = context ?? 'request';
  const problems = issues.map((i) => ({ path: `${where}${i.instancePath ?? ''}`, message: i.message ?? 'is invalid' }));
  if (context === 'body' && issues[0]?.instancePath === '/size') {
    return new LunrigError('INVALID_SIZE', "size must be a whole number of bytes or a string such as '10G'", { problems });
  }
  return new LunrigError('INVALID_ARGUMENT', message ?? `${where} is invalid`, { problems });
}

export function errorBody(err: LunrigError): ErrorBodyT {
  return { error: err.toJSON() };
}

export function sendError(reply: FastifyReply, err: LunrigError): FastifyReply {
  return reply.status(HTTP_STATUS[err.code]).type('application/json; charset=utf-8').send(errorBody(err));
}

/** For fastify's setErrorHandler and frameworkErrors. */
export function handleError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const lunrigError = toLunrigError(err);
  if (HTTP_STATUS[lunrigError.code] >= 500) request.log.error({ err }, 'control API request failed');
  return sendError(reply, lunrigError);
}

export function handleNotFound(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  return sendError(reply, new LunrigError('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url}`, { method: request.method, url: request.url }));
}

function lowerFirst(s: string): string {
  return s.length > 0 ? s[0]!.toLowerCase() + s.slice(1) : s;
}
