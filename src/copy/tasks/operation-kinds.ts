/**
 * Operation kinds a task can hold (spec §4.2: "any kind of FlashCopy, PPRC,
 * and path operation"). A kind is keyed by a string ('flashcopy.establish',
 * 'flashcopy.withdraw'; PPRC adds 'pprc.establish', 'pprc.suspend', 'path.establish', ...)
 * and knows how to check its parameters when a task is saved, how to run
 * them, and (optionally) how far a run's copy has got, for rsQueryComplete.
 *
 * Kinds take what they need from the TaskContext: FlashCopy kinds need
 * `flashcopy`; a PPRC kind adds its own service to the context when the
 * server opens the TaskManager.
 */
import { LunrigError } from '../../errors.js';
import type { FlashCopyManager } from '../flashcopy/index.js';

/** The copy services a task runs against. Further services (PPRC, paths) are further optional fields. */
export interface TaskContext {
  flashcopy?: FlashCopyManager;
  readonly [service: string]: unknown;
}

/** Where a task's copy work stands (rsQueryComplete). */
export interface TaskProgress {
  /** Some copy of this task is still in progress. */
  running: boolean;
  /** Completion over the task's pairs, 0..100 (pairs that ended count as 100). */
  percent: number;
  /** Per pair or volume, for display. */
  items: Array<{ name: string; percent: number; state: string }>;
}

export interface OperationKind<P = Record<string, unknown>> {
  readonly kind: string;
  /** A short phrase for listings. */
  describe(params: P): string;
  /** Check and normalise the parameters when a task is saved (throws INVALID_ARGUMENT). */
  validate(params: unknown): P;
  /** Run the operation; resolves when it has completed (for an establish: at T0), with a JSON result. */
  execute(params: P, context: TaskContext): Promise<unknown>;
  /** Where the operation's copy stands; absent when the kind has no copy to wait for. */
  progress?(params: P, context: TaskContext): TaskProgress;
}

export class OperationKinds {
  private readonly kinds = new Map<string, OperationKind<never>>();

  register<P>(kind: OperationKind<P>): this {
    if (this.kinds.has(kind.kind)) throw new LunrigError('INVALID_ARGUMENT', `task operation kind '${kind.kind}' is already registered`);
    this.kinds.set(kind.kind, kind as unknown as OperationKind<never>);
    return this;
  }

  get(kind: string): OperationKind<Record<string, unknown>> {
    const found = this.kinds.get(kind);
    if (!found) throw new LunrigError('INVALID_ARGUMENT', `unknown task operation kind '${kind}' (known: ${this.names().join(', ')})`, { kind });
    return found as unknown as OperationKind<Record<string, unknown>>;
  }

  has(kind: string): boolean {
    return this.kinds.has(kind);
  }

  names(): string[] {
    return [...this.kinds.keys()].sort();
  }
}

/** A field of a params object, checked. */
export function field(params: Record<string, unknown>, name: string, type: 'string' | 'boolean' | 'number', optional = false): unknown {
  const v = params[name];
  if (v === undefined && optional) return undefined;
  if (typeof v !== type) throw new LunrigError('INVALID_ARGUMENT', `task parameter '${name}' must be a ${type}`, { field: name });
  return v;
}

export function asObject(params: unknown): Record<string, unknown> {
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new LunrigError('INVALID_ARGUMENT', 'task parameters must be an object');
  return params as Record<string, unknown>;
}

export function needService<T>(context: TaskContext, name: string): T {
  const service = context[name];
  if (service === undefined) throw new LunrigError('NOT_SUPPORTED', `this server runs no '${name}' service for tasks`, { service: name });
  return service as T;
}
