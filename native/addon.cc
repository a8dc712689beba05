// JS bindings for the bitmap and CRC32C routines, and the module entry point.
// Every call is synchronous: callers that need to keep the event loop free
// already run these on worker threads.
#include <napi.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "args.h"
#include "bitmap.h"
#include "crc32c.h"
#include "syscalls.h"

namespace lunrig {
namespace {

struct BitRange {
  uint8_t* data;
  uint64_t start, count;
};

// (bitmap, start, count) with start + count inside the bitmap.
BitRange bitRange(const Napi::CallbackInfo& info) {
  const args::Bytes b = args::bytes(info, 0, "bitmap");
  const uint64_t start = args::integer(info, 1, "start");
  const uint64_t count = args::integer(info, 2, "count");
  const uint64_t bits = static_cast<uint64_t>(b.length) * 8;
  if (start + count > bits) {  // both <= 2^53: no overflow
    throw Napi::RangeError::New(info.Env(), "range [" + std::to_string(start) + ", " + std::to_string(start + count) +
                                                ") exceeds the bitmap's " + std::to_string(bits) + " bits");
  }
  return {b.data, start, count};
}

Napi::Value SetRange(const Napi::CallbackInfo& info) {
  const BitRange r = bitRange(info);
  bitmap::setRange(r.data, r.start, r.count);
  return info.Env().Undefined();
}

Napi::Value ClearRange(const Napi::CallbackInfo& info) {
  const BitRange r = bitRange(info);
  bitmap::clearRange(r.data, r.start, r.count);
  return info.Env().Undefined();
}

Napi::Value TestBit(const Napi::CallbackInfo& info) {
  const args::Bytes b = args::bytes(info, 0, "bitmap");
  const uint64_t index = args::integer(info, 1, "index");
  if (index >= static_cast<uint64_t>(b.length) * 8) {
    throw Napi::RangeError::New(info.Env(), "index " + std::to_string(index) + " is past the bitmap's " +
                                                std::to_string(static_cast<uint64_t>(b.length) * 8) + " bits");
  }
  return Napi::Boolean::New(info.Env(), bitmap::testBit(b.data, index));
}

Napi::Value AllSet(const Napi::CallbackInfo& info) {
  const BitRange r = bitRange(info);
  return Napi::Boolean::New(info.Env(), bitmap::findNextClear(r.data, r.start, r.start + r.count) < 0);
}

Napi::Value AnySet(const Napi::CallbackInfo& info) {
  const BitRange r = bitRange(info);
  return Napi::Boolean::New(info.Env(), bitmap::findNextSet(r.data, r.start, r.start + r.count) >= 0);
}

Napi::Value Popcount(const Napi::CallbackInfo& info) {
  const BitRange r = bitRange(info);
  return Napi::Number::New(info.Env(), static_cast<double>(bitmap::popcount(r.data, r.start, r.count)));
}

// (bitmap, from, limit): limit must lie inside the bitmap; from may be any
// index, and from >= limit finds nothing, so scan loops need no special case.
template <int64_t (*Find)(const uint8_t*, uint64_t, uint64_t)>
Napi::Value FindNext(const Napi::CallbackInfo& info) {
  const args::Bytes b = args::bytes(info, 0, "bitmap");
  const uint64_t from = args::integer(info, 1, "from");
  const uint64_t limit = args::integer(info, 2, "limit", static_cast<double>(static_cast<uint64_t>(b.length) * 8));
  return Napi::Number::New(info.Env(), static_cast<double>(Find(b.data, from, limit)));
}

// dst op= src over the common length. Overlapping views are resolved as if src
// were copied first, so the result never depends on the loop order.
template <void (*Op)(uint8_t*, const uint8_t*, size_t)>
Napi::Value Merge(const Napi::CallbackInfo& info) {
  const args::Bytes dst = args::bytes(info, 0, "dst");
  const args::Bytes src = args::bytes(info, 1, "src");
  const size_t n = std::min(dst.length, src.length);
  if (n == 0) return info.Env().Undefined();
  const auto d = reinterpret_cast<uintptr_t>(dst.data), s = reinterpret_cast<uintptr_t>(src.data);
  if (d < s + n && s < d + n) {
    const std::vector<uint8_t> copy(src.data, src.data + n);
    Op(dst.data, copy.data(), n);
  } else {
    Op(dst.data, src.data, n);
  }
  return info.Env().Undefined();
}

template <uint32_t (*Compute)(uint32_t, const uint8_t*, size_t)>
Napi::Value Crc32c(const Napi::CallbackInfo& info) {
  const args::Bytes data = args::bytes(info, 0, "data");
  const uint32_t previous =
      info[1].IsUndefined() ? 0 : static_cast<uint32_t>(args::integer(info, 1, "previous", 4294967295.0));
  return Napi::Number::New(info.Env(), Compute(previous, data.data, data.length));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  const auto fn = [&](const char* name, Napi::Function::Callback cb) {
    exports.Set(name, Napi::Function::New(env, cb, name));
  };
  fn("setRange", SetRange);
  fn("clearRange", ClearRange);
  fn("testBit", TestBit);
  fn("allSet", AllSet);
  fn("anySet", AnySet);
  fn("findNextSet", FindNext<bitmap::findNextSet>);
  fn("findNextClear", FindNext<bitmap::findNextClear>);
  fn("popcount", Popcount);
  fn("or", Merge<bitmap::orInto>);
  fn("andNot", Merge<bitmap::andNotInto>);
  fn("crc32c", Crc32c<crc32c::compute>);
  fn("crc32cSoftware", Crc32c<crc32c::computeSoftware>);
  fn("crc32cSse42", Crc32c<crc32c::computeSse42>);
  exports.Set("crc32cImplementation", Napi::String::New(env, crc32c::implementationName()));
  syscalls::Register(env, exports);
  return exports;
}

}  // namespace
}  // namespace lunrig

// The macro wants a plain identifier.
static Napi::Object InitLunrigNative(Napi::Env env, Napi::Object exports) { return lunrig::Init(env, exports); }
NODE_API_MODULE(lunrig_native, InitLunrigNative)
