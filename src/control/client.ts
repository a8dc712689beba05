/**
 * A typed client for the control API (global fetch). Error bodies come back as
 * the LunrigError the server raised, same code, message and details, so a
 * caller handles a remote refusal exactly like a local one.
 */
import { ERROR_CODES, LunrigError, type ErrorCode } from '../errors.js';
import type { CreateLunRequest, LunInfo } from '../store/pool.js';
import { DEFAULT_SERVER_URL } from './defaults.js';
import type { ExportInfoT, SystemInfoT } from './schemas.js';

export { DEFAULT_SERVER_URL } from './defaults.js';
export type { CreateLunRequest, LunInfo } from '../store/pool.js';
export type SystemInfo = SystemInfoT;
/** An NBD export as GET /v1/exports describes it. */
export type ExportInfo = ExportInfoT;
/** A LUN as GET /v1/luns/:name describes it. */
export type LunDetail = LunInfo & { allocatedBytes: number };

export interface ControlClientOptions {
  /** Give up on a request after this long (default 30 s). */
  timeoutMs?: number;
}

export class ControlClient {
  readonly baseUrl: string;
  private readonly timeoutMs: number;

  constructor(baseUrl: string = DEFAULT_SERVER_URL, options: ControlClientOptions = {}) {
    if (!URL.canParse(baseUrl) || !/^https?:$/.test(new URL(baseUrl).protocol)) {
      throw new LunrigError('INVALID_ARGUMENT', `server URL must be http://HOST:PORT, got '${baseUrl}'`);
    }
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  system(): Promise<SystemInfo> {
    return this.request('GET', '/v1/system');
  }

  async listLuns(): Promise<LunInfo[]> {
    return (await this.request<{ luns: LunInfo[] }>('GET', '/v1/luns')).luns;
  }

  lunInfo(name: string): Promise<LunDetail> {
    return this.request('GET', `/v1/luns/${encodeURIComponent(name)}`);
  }

  createLun(request: CreateLunRequest): Promise<LunInfo> {
    return this.request('POST', '/v1/luns', request);
  }

  growLun(name: string, size: number | string): Promise<LunInfo> {
    return this.request('POST', `/v1/luns/${encodeURIComponent(name)}/grow`, { size });
  }

  /** Make a LUN read-only or read-write (PATCH /v1/luns/:name). */
  setReadOnly(name: string, readOnly: boolean): Promise<LunInfo> {
    return this.request('PATCH', `/v1/luns/${encodeURIComponent(name)}`, { readOnly });
  }

  async listExports(): Promise<ExportInfo[]> {
    return (await this.request<{ exports: ExportInfo[] }>('GET', '/v1/exports')).exports;
  }

  async deleteLun(name: string): Promise<void> {
    await this.request('DELETE', `/v1/luns/${encodeURIComponent(name)}`);
  }

  /** One API call: JSON in and out; an error body comes back as the LunrigError it names. Feature clients (FlashCopy, ...) build on it. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = this.baseUrl + path;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        // Only send a content type with a body: fastify rejects an empty JSON body.
        ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    const text = await response.text().catch((err: unknown) => {
      throw this.unreachable(err);
    });
    if (!response.ok) throw errorFromResponse(url, response.status, text);
    if (text === '') return undefined as T;
    const parsed = parseJson(text);
    if (parsed === undefined) throw new LunrigError('IO_ERROR', `unexpected response from ${url}: not JSON`, { status: response.status });
    return parsed as T;
  }

  private unreachable(err: unknown): LunrigError {
    const timedOut = (err as Error | undefined)?.name === 'TimeoutError';
    const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause?.code;
    const message = timedOut
      ? `lunrig server at ${this.baseUrl} did not answer within ${this.timeoutMs} ms`
      : `cannot reach lunrig server at ${this.baseUrl}: is \`lunrig serve\` running?`;
    return new LunrigError('UNREACHABLE', message, { url: this.baseUrl, ...(typeof cause === 'string' ? { cause } : {}) }, { cause: err });
  }
}

function errorFromResponse(url: string, status: number, text: string): LunrigError {
  const error = (parseJson(text) as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  if (error && isErrorCode(error.code) && typeof error.message === 'string') {
    const details = typeof error.details === 'object' && error.details !== null ? (error.details as Record<string, unknown>) : undefined;
    return new LunrigError(error.code, error.message, details);
  }
  // Not a lunrig error body: something else answers on that port, or a proxy failed.
  return new LunrigError('IO_ERROR', `unexpected HTTP ${status} from ${url}: ${text.slice(0, 200)}`, { status });
}

function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
