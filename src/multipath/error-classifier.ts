/**
 * Path errors versus device errors (spec/multipath.md §1.4). A path error
 * condemns the path and the I/O is retried elsewhere; a device error belongs
 * to the LU and goes back to the caller with the path left alone. The split
 * follows Linux blk_path_error(): medium, space, protection, reservation and
 * request errors are the LU's; transport failures, timeouts and plain EIO are
 * the path's.
 */
import { isLunrigError, type ErrorCode } from '../errors.js';

/**
 * - path: fail the path, retry the I/O on another one;
 * - device: return to the caller, path stays up;
 * - retry: transient (BUSY, UNIT ATTENTION): retry on the same path;
 * - standby: the port is ALUA standby/transitioning (NOT READY): the path
 *   becomes standby and the I/O tries the next class.
 */
export type ErrorClass = 'path' | 'device' | 'retry' | 'standby';
export const ERROR_CLASSES: readonly ErrorClass[] = ['path', 'device', 'retry', 'standby'];

export type ErrorClassifier = (err: unknown) => ErrorClass;

const DEFAULT_CLASSES: Partial<Record<ErrorCode, ErrorClass>> = {
  UNREACHABLE: 'path',
  CLOSED: 'path',
  TIMEOUT: 'path',
  // Over NBD a medium error or a dead controller are both EIO: like Linux, condemn the path.
  IO_ERROR: 'path',
  BUSY: 'retry',
  NOT_READY: 'standby',
};

export interface ClassifierOptions {
  /** Per-code overrides, e.g. `{ IO_ERROR: 'device' }` for a rig whose EIOs are medium errors. */
  overrides?: Partial<Record<ErrorCode, ErrorClass>>;
}

export function createClassifier(options: ClassifierOptions = {}): ErrorClassifier {
  const table = { ...DEFAULT_CLASSES, ...options.overrides };
  return (err) => {
    // Anything that is not a typed error came from the transport (a socket, a bug below): the path's.
    if (!isLunrigError(err)) return 'path';
    return table[err.code] ?? 'device';
  };
}

export const defaultClassifier: ErrorClassifier = createClassifier();
