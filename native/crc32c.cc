#include "crc32c.h"

#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>  // _mm_crc32_*
#include <wmmintrin.h>  // _mm_clmulepi64_si128
#define LUNRIG_CRC_X86 1
#endif

namespace lunrig::crc32c {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;

// --- Polynomial arithmetic mod P, reflected (bit i holds x^(31-i)) ---------

constexpr uint32_t timesX(uint32_t a) { return (a >> 1) ^ (kPoly & (0u - (a & 1u))); }

constexpr uint32_t mulMod(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (int i = 0; i < 32; ++i, b = timesX(b)) {
    if (a & (0x80000000u >> i)) product ^= b;  // a has an x^i term
  }
  return product;
}

// x^n mod P.
constexpr uint32_t xPowMod(uint64_t n) {
  uint32_t result = 0x80000000u, base = 0x40000000u;  // 1 and x
  for (; n; n >>= 1, base = mulMod(base, base)) {
    if (n & 1) result = mulMod(result, base);
  }
  return result;
}

// --- Software: slicing-by-8 ---------------------------------------------

struct Tables {
  uint32_t t[8][256];
};

constexpr Tables makeTables() {
  Tables tb{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = timesX(c);
    tb.t[0][i] = c;
  }
  for (int s = 1; s < 8; ++s) {
    for (uint32_t i = 0; i < 256; ++i) tb.t[s][i] = (tb.t[s - 1][i] >> 8) ^ tb.t[0][tb.t[s - 1][i] & 0xFF];
  }
  return tb;
}

constexpr Tables kTables = makeTables();

inline uint32_t load32le(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

// The update functions work on the raw register (no pre/post inversion).
uint32_t updateSoftware(uint32_t crc, const uint8_t* p, size_t n) {
  const auto& t = kTables.t;
  for (; n >= 8; p += 8, n -= 8) {
    const uint32_t lo = load32le(p) ^ crc, hi = load32le(p + 4);
    crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
          t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
  }
  for (; n; ++p, --n) crc = (crc >> 8) ^ t[0][(crc ^ *p) & 0xFF];
  return crc;
}

#ifdef LUNRIG_CRC_X86
// --- Hardware: SSE4.2 crc32 on three interleaved streams ------------------
//
// One crc32q chain retires 8 bytes per 3 cycles (its latency), while the unit
// accepts one per cycle. So a block of 3*L bytes is split into three L-byte
// streams computed side by side; the first two are then shifted past the
// bytes that follow them with a carry-less multiply and XORed in:
//   crc(A B C) = crcA * x^(16L) ^ crcB * x^(8L) ^ crcC   (mod P)

#define LUNRIG_HW __attribute__((target("sse4.2,pclmul")))

LUNRIG_HW inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// crc * x^(8 * bytes) mod P, given k = x^(8 * bytes - 33) mod P: the 64-bit
// carry-less product of two reflected 32-bit values carries an extra factor x,
// and crc32q(0, v) multiplies by x^32 while reducing.
LUNRIG_HW inline uint32_t shift(uint32_t crc, uint32_t k) {
  const __m128i product = _mm_clmulepi64_si128(_mm_cvtsi32_si128(static_cast<int>(crc)),
                                               _mm_cvtsi32_si128(static_cast<int>(k)), 0);
  return static_cast<uint32_t>(_mm_crc32_u64(0, static_cast<uint64_t>(_mm_cvtsi128_si64(product))));
}

template <size_t L>
LUNRIG_HW inline uint32_t threeStreams(uint32_t crc, const uint8_t*& p, size_t& n) {
  static_assert(L % 8 == 0, "stream length must be whole words");
  constexpr uint32_t kOne = xPowMod(8 * L - 33), kTwo = xPowMod(16 * L - 33);
  for (; n >= 3 * L; p += 3 * L, n -= 3 * L) {
    uint64_t a = crc, b = 0, c = 0;
    for (size_t i = 0; i < L; i += 8) {
      a = _mm_crc32_u64(a, load64(p + i));
      b = _mm_crc32_u64(b, load64(p + L + i));
      c = _mm_crc32_u64(c, load64(p + 2 * L + i));
    }
    crc = shift(static_cast<uint32_t>(a), kTwo) ^ shift(static_cast<uint32_t>(b), kOne) ^ static_cast<uint32_t>(c);
  }
  return crc;
}

LUNRIG_HW uint32_t updateHardware(uint32_t crc, const uint8_t* p, size_t n) {
  // Big blocks amortise the combine; the smaller sizes mop up the remainder.
  crc = threeStreams<4096>(crc, p, n);
  crc = threeStreams<512>(crc, p, n);
  crc = threeStreams<64>(crc, p, n);
  uint64_t c = crc;
  for (; n >= 8; p += 8, n -= 8) c = _mm_crc32_u64(c, load64(p));
  crc = static_cast<uint32_t>(c);
  for (; n; ++p, --n) crc = _mm_crc32_u8(crc, *p);
  return crc;
}

bool hasHardware() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul");
}
#else
bool hasHardware() { return false; }
uint32_t updateHardware(uint32_t crc, const uint8_t* p, size_t n) { return updateSoftware(crc, p, n); }
#endif

using Update = uint32_t (*)(uint32_t, const uint8_t*, size_t);

// Chosen once; a function-local static is initialised thread-safely.
Update chosen() {
  static const Update update = hasHardware() ? updateHardware : updateSoftware;
  return update;
}

}  // namespace

uint32_t compute(uint32_t previous, const uint8_t* p, size_t n) { return ~chosen()(~previous, p, n); }

uint32_t computeSoftware(uint32_t previous, const uint8_t* p, size_t n) { return ~updateSoftware(~previous, p, n); }

const char* implementationName() { return chosen() == updateSoftware ? "slicing-by-8" : "sse4.2+pclmul"; }

}  // namespace lunrig::crc32c
