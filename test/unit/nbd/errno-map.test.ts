import { describe, expect, it } from 'vitest';
import { ERROR_CODES, LunrigError } from '../../../src/errors.js';
import * as C from '../../../src/nbd/constants.js';
import { NBD_ERRNO, errnoForError, errorCodeForErrno } from '../../../src/nbd/errno-map.js';

const SPEC_ERRNOS = [C.NBD_EPERM, C.NBD_EIO, C.NBD_ENOMEM, C.NBD_EINVAL, C.NBD_ENOSPC, C.NBD_EOVERFLOW, C.NBD_ENOTSUP, C.NBD_ESHUTDOWN];

describe('errno-map: LunrigError codes <-> NBD errno (spec/nbd.md §2.5)', () => {
  it('maps every error code to an errno from the spec set', () => {
    for (const code of ERROR_CODES) expect(SPEC_ERRNOS).toContain(NBD_ERRNO[code]);
  });

  it('applies the command-dependent rules of §4: writes past the end are ENOSPC, ENOTSUP only for FAST_ZERO', () => {
    const oor = new LunrigError('OUT_OF_RANGE', 'x');
    expect(errnoForError(oor)).toBe(C.NBD_EINVAL);
    expect(errnoForError(oor, { isWrite: true })).toBe(C.NBD_ENOSPC);
    const ns = new LunrigError('NOT_SUPPORTED', 'x');
    expect(errnoForError(ns)).toBe(C.NBD_EINVAL);
    expect(errnoForError(ns, { fastZero: true })).toBe(C.NBD_ENOTSUP);
    expect(errnoForError(new LunrigError('READ_ONLY', 'x'))).toBe(C.NBD_EPERM);
    expect(errnoForError(new LunrigError('NO_SPACE', 'x'))).toBe(C.NBD_ENOSPC);
    expect(errnoForError(new LunrigError('CLOSED', 'x'))).toBe(C.NBD_ESHUTDOWN);
    expect(errnoForError(new Error('plain'))).toBe(C.NBD_EIO);
  });

  it('maps errno back to codes; unknown values count as EINVAL', () => {
    expect(errorCodeForErrno(C.NBD_EPERM)).toBe('READ_ONLY');
    expect(errorCodeForErrno(C.NBD_EIO)).toBe('IO_ERROR');
    expect(errorCodeForErrno(C.NBD_ENOSPC)).toBe('NO_SPACE');
    expect(errorCodeForErrno(C.NBD_ENOTSUP)).toBe('NOT_SUPPORTED');
    expect(errorCodeForErrno(C.NBD_ESHUTDOWN)).toBe('CLOSED');
    expect(errorCodeForErrno(C.NBD_EINVAL)).toBe('INVALID_ARGUMENT');
    expect(errorCodeForErrno(12345)).toBe('INVALID_ARGUMENT');
  });

  it('round-trips the codes that carry distinct meaning over the wire', () => {
    for (const code of ['READ_ONLY', 'NO_SPACE', 'IO_ERROR', 'CLOSED', 'INVALID_ARGUMENT'] as const) {
      expect(errorCodeForErrno(NBD_ERRNO[code])).toBe(code);
    }
  });
});
