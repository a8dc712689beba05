#include "bitmap.h"

#include <cstring>

namespace lunrig::bitmap {
namespace {

// Word loads read bytes in memory order, so bit k of the word is bit k of the
// bitmap region on every host.
inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

inline unsigned popcount8(uint8_t v) { return static_cast<unsigned>(__builtin_popcount(v)); }

// A non-empty bit range as byte indices with the masks of its edge bytes.
struct Span {
  size_t first, last;  // inclusive byte indices
  uint8_t firstMask, lastMask;
};

inline Span spanOf(uint64_t start, uint64_t count) {
  const uint64_t end = start + count - 1;  // count > 0
  return {static_cast<size_t>(start >> 3), static_cast<size_t>(end >> 3),
          static_cast<uint8_t>(0xFFu << (start & 7)), static_cast<uint8_t>(0xFFu >> (7 - (end & 7)))};
}

uint64_t popcountWordsGeneric(const uint8_t* p, size_t n) {
  uint64_t total = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = load64(p + i);
    v -= (v >> 1) & 0x5555555555555555ull;
    v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
    v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    total += (v * 0x0101010101010101ull) >> 56;
  }
  for (; i < n; ++i) total += popcount8(p[i]);
  return total;
}

#if defined(__x86_64__) || defined(__i386__)
// The POPCNT instruction is chosen at run time, so the module still runs on
// CPUs without it.
__attribute__((target("popcnt"))) uint64_t popcountWordsPopcnt(const uint8_t* p, size_t n) {
  uint64_t a = 0, b = 0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {  // two accumulators break the add chain
    a += static_cast<uint64_t>(__builtin_popcountll(load64(p + i)));
    b += static_cast<uint64_t>(__builtin_popcountll(load64(p + i + 8)));
  }
  for (; i < n; ++i) a += static_cast<uint64_t>(__builtin_popcount(p[i]));
  return a + b;
}

uint64_t popcountBytes(const uint8_t* p, size_t n) {
  static const bool hasPopcnt = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("popcnt") != 0;
  }();
  return hasPopcnt ? popcountWordsPopcnt(p, n) : popcountWordsGeneric(p, n);
}
#else
uint64_t popcountBytes(const uint8_t* p, size_t n) { return popcountWordsGeneric(p, n); }
#endif

inline void applyRange(uint8_t* p, uint64_t start, uint64_t count, bool set) {
  if (count == 0) return;
  const Span s = spanOf(start, count);
  if (s.first == s.last) {
    const uint8_t m = s.firstMask & s.lastMask;
    p[s.first] = set ? (p[s.first] | m) : (p[s.first] & ~m);
    return;
  }
  p[s.first] = set ? (p[s.first] | s.firstMask) : (p[s.first] & ~s.firstMask);
  std::memset(p + s.first + 1, set ? 0xFF : 0x00, s.last - s.first - 1);
  p[s.last] = set ? (p[s.last] | s.lastMask) : (p[s.last] & ~s.lastMask);
}

inline int64_t bitAt(size_t byte, unsigned bitInByte) {
  return static_cast<int64_t>(byte) * 8 + bitInByte;
}

// Invert=false finds the first set bit in [from, limit); Invert=true the first
// clear one, by scanning complemented bytes.
template <bool Invert>
int64_t findNext(const uint8_t* p, uint64_t from, uint64_t limit) {
  if (from >= limit) return -1;
  const Span s = spanOf(from, limit - from);
  const uint8_t flip8 = Invert ? 0xFF : 0x00;
  const uint64_t flip64 = Invert ? ~0ull : 0ull;

  uint8_t v = (p[s.first] ^ flip8) & s.firstMask;
  if (s.first == s.last) v &= s.lastMask;
  if (v) return bitAt(s.first, __builtin_ctz(v));
  if (s.first == s.last) return -1;

  size_t i = s.first + 1;
  // Skip uninteresting 32-byte blocks with one test, then pinpoint the word.
  for (; i + 32 <= s.last; i += 32) {
    const uint64_t w0 = load64(p + i) ^ flip64, w1 = load64(p + i + 8) ^ flip64;
    const uint64_t w2 = load64(p + i + 16) ^ flip64, w3 = load64(p + i + 24) ^ flip64;
    if ((w0 | w1 | w2 | w3) == 0) continue;
    if (w0) return bitAt(i, __builtin_ctzll(w0));
    if (w1) return bitAt(i + 8, __builtin_ctzll(w1));
    if (w2) return bitAt(i + 16, __builtin_ctzll(w2));
    return bitAt(i + 24, __builtin_ctzll(w3));
  }
  for (; i + 8 <= s.last; i += 8) {
    const uint64_t w = load64(p + i) ^ flip64;
    if (w) return bitAt(i, __builtin_ctzll(w));
  }
  for (; i < s.last; ++i) {
    const uint8_t b = p[i] ^ flip8;
    if (b) return bitAt(i, __builtin_ctz(b));
  }
  v = (p[s.last] ^ flip8) & s.lastMask;
  return v ? bitAt(s.last, __builtin_ctz(v)) : -1;
}

}  // namespace

void setRange(uint8_t* p, uint64_t start, uint64_t count) { applyRange(p, start, count, true); }
void clearRange(uint8_t* p, uint64_t start, uint64_t count) { applyRange(p, start, count, false); }

bool testBit(const uint8_t* p, uint64_t index) { return (p[index >> 3] >> (index & 7)) & 1; }

uint64_t popcount(const uint8_t* p, uint64_t start, uint64_t count) {
  if (count == 0) return 0;
  const Span s = spanOf(start, count);
  if (s.first == s.last) return popcount8(p[s.first] & s.firstMask & s.lastMask);
  return popcount8(p[s.first] & s.firstMask) + popcountBytes(p + s.first + 1, s.last - s.first - 1) +
         popcount8(p[s.last] & s.lastMask);
}

int64_t findNextSet(const uint8_t* p, uint64_t from, uint64_t limit) { return findNext<false>(p, from, limit); }
int64_t findNextClear(const uint8_t* p, uint64_t from, uint64_t limit) { return findNext<true>(p, from, limit); }

// Plain byte loops: with __restrict, -O3 vectorises them to full SIMD width.
void orInto(uint8_t* __restrict dst, const uint8_t* __restrict src, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] |= src[i];
}
void andNotInto(uint8_t* __restrict dst, const uint8_t* __restrict src, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] &= static_cast<uint8_t>(~src[i]);
}

}  // namespace lunrig::bitmap
