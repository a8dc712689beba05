/** One request on its way through the worker engine (main-thread side). */
import type { LunrigError } from '../errors.js';
import type { SlotRef } from './slot-arena.js';
import type { WorkerLunBackend } from './worker-backend.js';

export type RequestDone = (err: LunrigError | undefined, result: number) => void;

export class IoRequest {
  /** Worker the request was queued on (-1 until dispatched). */
  worker = -1;
  /** OP_COPY: the LUN copied from (`backend` is the LUN written); OP_MIRROR_WRITE: the secondary. */
  source: WorkerLunBackend | undefined = undefined;
  /** OP_COPY: offset in `source`. */
  sourceOffset = 0;
  /** OP_MIRROR_WRITE: Date.now() past which the primary write is skipped (0: none). */
  deadline = 0;

  constructor(
    readonly backend: WorkerLunBackend | undefined,
    readonly op: number,
    readonly flags: number,
    readonly offset: number,
    readonly length: number,
    readonly slot: SlotRef | undefined,
    readonly done: RequestDone,
  ) {}
}
