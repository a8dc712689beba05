// Argument checks shared by the bindings. They throw the same error classes
// as the TypeScript fallback (src/native/validate.ts): TypeError for a wrong
// type, RangeError for a value out of range.
#ifndef LUNRIG_ARGS_H
#define LUNRIG_ARGS_H

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

namespace lunrig::args {

constexpr double kMaxSafeInteger = 9007199254740991.0;

struct Bytes {
  uint8_t* data;  // already advanced by the view's byteOffset
  size_t length;
};

// A Uint8Array (or Buffer) argument.
inline Bytes bytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(info.Env(), info[i], &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), std::string("\"") + name + "\" must be a Uint8Array");
  }
  return {static_cast<uint8_t*>(data), length};
}

inline double number(const Napi::CallbackInfo& info, size_t i, const char* name) {
  double d;
  if (napi_get_value_double(info.Env(), info[i], &d) != napi_ok) {
    throw Napi::TypeError::New(info.Env(), std::string("\"") + name + "\" must be a number");
  }
  return d;
}

// A safe integer in [0, max].
inline uint64_t integer(const Napi::CallbackInfo& info, size_t i, const char* name, double max = kMaxSafeInteger) {
  const double d = number(info, i, name);
  if (!(d >= 0 && d <= max) || std::trunc(d) != d) {
    throw Napi::RangeError::New(info.Env(), std::string("\"") + name + "\" must be an integer in [0, " +
                                                std::to_string(static_cast<uint64_t>(max)) + "], got " +
                                                Napi::Value(info[i]).ToString().Utf8Value());
  }
  return static_cast<uint64_t>(d);
}

}  // namespace lunrig::args

#endif
