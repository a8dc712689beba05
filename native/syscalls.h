// fallocate, lseek(SEEK_DATA/SEEK_HOLE) and fdatasync, which Node's fs lacks.
#ifndef LUNRIG_SYSCALLS_H
#define LUNRIG_SYSCALLS_H

#include <napi.h>

namespace lunrig::syscalls {

// Adds punchHole, zeroRange, seekData, seekHole and fdatasync to `exports`.
void Register(Napi::Env env, Napi::Object exports);

}  // namespace lunrig::syscalls

#endif
