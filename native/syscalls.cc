// 64-bit off_t on 32-bit hosts too; offsets reach 2^53.
#define _FILE_OFFSET_BITS 64

#include "syscalls.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "args.h"

#ifdef __linux__
#include <linux/falloc.h>
#endif

namespace lunrig::syscalls {
namespace {

const char* errnoName(int err) {
  switch (err) {
#define LUNRIG_ERRNO(e) \
  case e:               \
    return #e;
    LUNRIG_ERRNO(EPERM) LUNRIG_ERRNO(ENOENT) LUNRIG_ERRNO(EINTR) LUNRIG_ERRNO(EIO) LUNRIG_ERRNO(ENXIO)
    LUNRIG_ERRNO(EBADF) LUNRIG_ERRNO(EAGAIN) LUNRIG_ERRNO(ENOMEM) LUNRIG_ERRNO(EACCES) LUNRIG_ERRNO(EFAULT)
    LUNRIG_ERRNO(EBUSY) LUNRIG_ERRNO(EEXIST) LUNRIG_ERRNO(ENODEV) LUNRIG_ERRNO(ENOTDIR) LUNRIG_ERRNO(EISDIR)
    LUNRIG_ERRNO(EINVAL) LUNRIG_ERRNO(ETXTBSY) LUNRIG_ERRNO(EFBIG) LUNRIG_ERRNO(ENOSPC) LUNRIG_ERRNO(ESPIPE)
    LUNRIG_ERRNO(EROFS) LUNRIG_ERRNO(ENOSYS) LUNRIG_ERRNO(EOPNOTSUPP) LUNRIG_ERRNO(EOVERFLOW)
    LUNRIG_ERRNO(EDQUOT) LUNRIG_ERRNO(ESTALE)
#if defined(ENOTSUP) && ENOTSUP != EOPNOTSUPP
    LUNRIG_ERRNO(ENOTSUP)
#endif
#undef LUNRIG_ERRNO
    default:
      return "UNKNOWN";
  }
}

// A Node-style system error: message "CODE: description, syscall", with
// .code, .errno (negative, as Node's fs reports it) and .syscall.
[[noreturn]] void throwErrno(Napi::Env env, int err, const char* syscall) {
  const char* code = errnoName(err);
  Napi::Error error = Napi::Error::New(env, std::string(code) + ": " + std::strerror(err) + ", " + syscall);
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("code", Napi::String::New(env, code));
  error.Set("syscall", Napi::String::New(env, syscall));
  throw error;
}

// Like Node's fs, a negative or non-integer fd is a RangeError, while a
// well-formed fd that is not open reaches the kernel and fails with EBADF.
int fdArg(const Napi::CallbackInfo& info) { return static_cast<int>(args::integer(info, 0, "fd", 2147483647.0)); }

#ifdef __linux__
void fallocateRange(const Napi::CallbackInfo& info, int mode) {
  const int fd = fdArg(info);
  const auto offset = static_cast<off_t>(args::integer(info, 1, "offset"));
  const auto length = static_cast<off_t>(args::integer(info, 2, "length"));
  if (length == 0) return;  // nothing to do; the kernel would say EINVAL
  int rc;
  do rc = ::fallocate(fd, mode, offset, length);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) throwErrno(info.Env(), errno, "fallocate");
}

// lseek(2) with SEEK_DATA / SEEK_HOLE; ENXIO (no data, or offset past the end)
// is an answer, not an error.
Napi::Value seek(const Napi::CallbackInfo& info, int whence) {
  const int fd = fdArg(info);
  const auto offset = static_cast<off_t>(args::integer(info, 1, "offset"));
  const off_t at = ::lseek(fd, offset, whence);
  if (at < 0) {
    if (errno == ENXIO) return Napi::Number::New(info.Env(), -1);
    throwErrno(info.Env(), errno, "lseek");
  }
  return Napi::Number::New(info.Env(), static_cast<double>(at));
}

Napi::Value PunchHole(const Napi::CallbackInfo& info) {
  fallocateRange(info, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
  return info.Env().Undefined();
}

Napi::Value ZeroRange(const Napi::CallbackInfo& info) {
  fallocateRange(info, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE);
  return info.Env().Undefined();
}

Napi::Value SeekData(const Napi::CallbackInfo& info) { return seek(info, SEEK_DATA); }
Napi::Value SeekHole(const Napi::CallbackInfo& info) { return seek(info, SEEK_HOLE); }

Napi::Value Fdatasync(const Napi::CallbackInfo& info) {
  const int fd = fdArg(info);
  int rc;
  do rc = ::fdatasync(fd);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) throwErrno(info.Env(), errno, "fdatasync");
  return info.Env().Undefined();
}

// preadv2(RWF_NOWAIT): read only what the page cache already holds, never
// waiting for the disk, so the event-loop thread can serve cached reads
// without a hand-off to an I/O worker. -1 = it would block (EAGAIN), or the
// kernel or filesystem cannot do it (EOPNOTSUPP): ask a worker instead.
// A short count is possible (part cached, or end of file).
Napi::Value PreadNowait(const Napi::CallbackInfo& info) {
  const int fd = fdArg(info);
  const args::Bytes into = args::bytes(info, 1, "into");
  const auto offset = static_cast<off_t>(args::integer(info, 2, "offset"));
  struct iovec iov = {into.data, into.length};
  ssize_t n;
  do n = ::preadv2(fd, &iov, 1, offset, RWF_NOWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EOPNOTSUPP || errno == ENOSYS) return Napi::Number::New(info.Env(), -1);
    throwErrno(info.Env(), errno, "preadv2");
  }
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// copy_file_range(2): copies up to `length` bytes from fdIn at offsetIn to
// fdOut at offsetOut inside the kernel (no user-space buffer; on ext4 a
// page-cache to page-cache copy). Returns the bytes copied (short counts are
// possible, 0 at the input's end), or -1 when this kernel or filesystem pair
// cannot do it (ENOSYS, EXDEV, EOPNOTSUPP, EINVAL for unsupported files):
// the caller then copies through a buffer. Other errors throw.
Napi::Value CopyFileRange(const Napi::CallbackInfo& info) {
  const int fdIn = fdArg(info);
  const auto offsetIn = static_cast<off_t>(args::integer(info, 1, "offsetIn"));
  const int fdOut = static_cast<int>(args::integer(info, 2, "fdOut", 2147483647.0));
  const auto offsetOut = static_cast<off_t>(args::integer(info, 3, "offsetOut"));
  const auto length = static_cast<size_t>(args::integer(info, 4, "length"));
  loff_t in = offsetIn;
  loff_t out = offsetOut;
  ssize_t n;
  do n = ::copy_file_range(fdIn, &in, fdOut, &out, length, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == ENOSYS || errno == EXDEV || errno == EOPNOTSUPP || errno == EINVAL) return Napi::Number::New(info.Env(), -1);
    throwErrno(info.Env(), errno, "copy_file_range");
  }
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}
#else
// Elsewhere the module still loads; the store sees ENOSYS and can degrade.
Napi::Value Unsupported(const Napi::CallbackInfo& info) { throwErrno(info.Env(), ENOSYS, "fallocate"); }
Napi::Value PunchHole(const Napi::CallbackInfo& info) { return Unsupported(info); }
Napi::Value ZeroRange(const Napi::CallbackInfo& info) { return Unsupported(info); }
Napi::Value SeekData(const Napi::CallbackInfo& info) { return Unsupported(info); }
Napi::Value SeekHole(const Napi::CallbackInfo& info) { return Unsupported(info); }
Napi::Value Fdatasync(const Napi::CallbackInfo& info) { return Unsupported(info); }
Napi::Value PreadNowait(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), -1); }
Napi::Value CopyFileRange(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), -1); }
#endif

}  // namespace

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("punchHole", Napi::Function::New(env, PunchHole, "punchHole"));
  exports.Set("zeroRange", Napi::Function::New(env, ZeroRange, "zeroRange"));
  exports.Set("seekData", Napi::Function::New(env, SeekData, "seekData"));
  exports.Set("seekHole", Napi::Function::New(env, SeekHole, "seekHole"));
  exports.Set("fdatasync", Napi::Function::New(env, Fdatasync, "fdatasync"));
  exports.Set("preadNowait", Napi::Function::New(env, PreadNowait, "preadNowait"));
  exports.Set("copyFileRange", Napi::Function::New(env, CopyFileRange, "copyFileRange"));
}

}  // namespace lunrig::syscalls
