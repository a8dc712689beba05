#include "crc32c.h"

#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>  // _mm_crc32_*
#include <wmmintrin.h>  // _mm_clmulepi64_si128
#include <immintrin.h>  // AVX2, VPCLMULQDQ
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

// The last few bytes, a word and then a byte at a time.
LUNRIG_HW inline uint32_t finish(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = crc;
  for (; n >= 8; p += 8, n -= 8) c = _mm_crc32_u64(c, load64(p));
  crc = static_cast<uint32_t>(c);
  for (; n; ++p, --n) crc = _mm_crc32_u8(crc, *p);
  return crc;
}

LUNRIG_HW uint32_t updateHardware(uint32_t crc, const uint8_t* p, size_t n) {
  // Big blocks amortise the combine; the smaller sizes mop up the remainder.
  crc = threeStreams<4096>(crc, p, n);
  crc = threeStreams<512>(crc, p, n);
  crc = threeStreams<64>(crc, p, n);
  return finish(crc, p, n);
}

// --- Fusion: VPCLMULQDQ folding alongside three crc32q streams -------------
//
// crc32q is limited to one instruction (8 bytes) a cycle, but it does not use
// the vector carry-less multiplier. So a buffer is cut in four: the first part
// is folded with 256-bit VPCLMULQDQ while three crc32q streams work through the
// other three in the same loop, and the four CRCs are combined at the end.
//
// Folding: a 16-byte lane A, first 8 bytes Alo, stands for the polynomial
// Alo * x^64 + Ahi. Moving it D bytes down the message multiplies it by x^(8D),
// and mod P that is clmul(Alo, x^(8D+31)) ^ clmul(Ahi, x^(8D-33)): a 128-bit
// value again (each product carries an extra x^33, as in shift()), XORed into
// the lane D bytes on. A ymm register folds two lanes at once.

#define LUNRIG_VEC __attribute__((target("sse4.2,pclmul,avx2,vpclmulqdq")))

// x^n mod P at run time in O(log n) steps, for shifts by a length known only
// at run time: x^(2k+33) is crc32q(0, clmul(x^k, x^k)), and x^(2k+32) the same
// with the product shifted up one place (it has 63 bits, so none falls off).
LUNRIG_HW inline uint32_t xPowModFast(uint64_t n) {
  uint64_t steps = 1;  // a stop bit, then one bit per squaring, set for x^(2k+32)
  for (; n >= 192; n = (n - 32) >> 1) steps = steps << 1 | (~n & 1);
  uint32_t acc = 0x80000000u >> (n & 31);
  for (n >>= 5; n; --n) acc = _mm_crc32_u32(acc, 0);  // times x^32
  for (; steps != 1; steps >>= 1) {
    const __m128i a = _mm_cvtsi32_si128(static_cast<int>(acc));
    const auto square = static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_clmulepi64_si128(a, a, 0)));
    acc = static_cast<uint32_t>(_mm_crc32_u64(0, square << (steps & 1)));
  }
  return acc;
}

template <size_t D>
LUNRIG_VEC inline __m256i foldBy() {
  constexpr auto lo = static_cast<long long>(xPowMod(8 * D + 31)), hi = static_cast<long long>(xPowMod(8 * D - 33));
  return _mm256_set_epi64x(hi, lo, hi, lo);
}

LUNRIG_VEC inline __m256i fold(__m256i x, __m256i k) {
  return _mm256_xor_si256(_mm256_clmulepi64_epi128(x, k, 0x00), _mm256_clmulepi64_epi128(x, k, 0x11));
}

LUNRIG_VEC inline __m256i load256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Each round folds 128 bytes (four ymm accumulators, which hide VPCLMULQDQ's
// latency) and feeds each crc32q stream kStreamBytes: about what each unit
// gets through in the same time (48 measured best of 32..64 on Zen 3).
constexpr size_t kStreamBytes = 48;
constexpr size_t kRound = 128 + 3 * kStreamBytes;
// Below this the SSE4.2 path is about as fast or faster (measured on Zen 3).
constexpr size_t kFusionMin = 512;
static_assert(kFusionMin >= kRound, "fusion needs one whole round");

// n >= kRound. Layout: V (128 bytes a round) | A | B | C | under 24 bytes.
// It ends in a plain return, where the compiler puts the vzeroupper that
// legacy-SSE code run next needs (GCC 12 left it out before a tail call to
// updateHardware, which then ran 4x slower on the Zen 3 this was tuned on).
LUNRIG_VEC __attribute__((noinline)) uint32_t updateFusion(uint32_t crc, const uint8_t* p, size_t n) {
  const size_t rounds = n / kRound, vector = 128 * rounds;
  const size_t len = (n - vector) / 24 * 8;  // per stream, at least rounds * kStreamBytes
  const uint32_t k = xPowModFast(8 * len - 33);  // shifts a CRC past one stream
  const uint8_t* s = p + vector;

  // The register goes into the first bytes of V.
  __m256i x0 = _mm256_xor_si256(load256(p), _mm256_setr_epi32(static_cast<int>(crc), 0, 0, 0, 0, 0, 0, 0));
  __m256i x1 = load256(p + 32), x2 = load256(p + 64), x3 = load256(p + 96);
  uint64_t a = 0, b = 0, c = 0;
  size_t i = 0;  // offset in each stream
  const __m256i k128 = foldBy<128>();
  for (size_t r = 1; r < rounds; ++r, i += kStreamBytes) {
    const uint8_t* v = p + 128 * r;
    x0 = _mm256_xor_si256(fold(x0, k128), load256(v));
    x1 = _mm256_xor_si256(fold(x1, k128), load256(v + 32));
    x2 = _mm256_xor_si256(fold(x2, k128), load256(v + 64));
    x3 = _mm256_xor_si256(fold(x3, k128), load256(v + 96));
    for (size_t j = i; j < i + kStreamBytes; j += 8) {
      a = _mm_crc32_u64(a, load64(s + j));
      b = _mm_crc32_u64(b, load64(s + len + j));
      c = _mm_crc32_u64(c, load64(s + 2 * len + j));
    }
  }
  for (; i < len; i += 8) {
    a = _mm_crc32_u64(a, load64(s + i));
    b = _mm_crc32_u64(b, load64(s + len + i));
    c = _mm_crc32_u64(c, load64(s + 2 * len + i));
  }

  // Four accumulators to one, two lanes to one, then the last lane to a CRC:
  // crc32q(0, w) is w * x^32 mod P and crc32q(c, w) is (c * x^64 + w * x^32).
  x3 = _mm256_xor_si256(_mm256_xor_si256(x3, fold(x0, foldBy<96>())),
                        _mm256_xor_si256(fold(x1, foldBy<64>()), fold(x2, foldBy<32>())));
  const __m128i k16 = _mm256_castsi256_si128(foldBy<16>()), first = _mm256_castsi256_si128(x3);
  const __m128i moved = _mm_xor_si128(_mm_clmulepi64_si128(first, k16, 0x00), _mm_clmulepi64_si128(first, k16, 0x11));
  const __m128i lane = _mm_xor_si128(moved, _mm256_extracti128_si256(x3, 1));
  uint64_t crcV = _mm_crc32_u64(0, static_cast<uint64_t>(_mm_cvtsi128_si64(lane)));
  crcV = _mm_crc32_u64(crcV, static_cast<uint64_t>(_mm_extract_epi64(lane, 1)));

  crc = shift(static_cast<uint32_t>(crcV), k) ^ static_cast<uint32_t>(a);
  crc = shift(crc, k) ^ static_cast<uint32_t>(b);
  crc = shift(crc, k) ^ static_cast<uint32_t>(c);
  return finish(crc, s + 3 * len, n - vector - 3 * len);
}

LUNRIG_HW uint32_t updateFused(uint32_t crc, const uint8_t* p, size_t n) {
  return n >= kFusionMin ? updateFusion(crc, p, n) : updateHardware(crc, p, n);
}

bool hasHardware() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul");
}

bool hasFusion() {
  return hasHardware() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("vpclmulqdq");
}
#else
bool hasHardware() { return false; }
bool hasFusion() { return false; }
uint32_t updateHardware(uint32_t crc, const uint8_t* p, size_t n) { return updateSoftware(crc, p, n); }
uint32_t updateFused(uint32_t crc, const uint8_t* p, size_t n) { return updateSoftware(crc, p, n); }
#endif

using Update = uint32_t (*)(uint32_t, const uint8_t*, size_t);

// Chosen once; a function-local static is initialised thread-safely.
Update chosen() {
  static const Update update = hasFusion() ? updateFused : hasHardware() ? updateHardware : updateSoftware;
  return update;
}

}  // namespace

uint32_t compute(uint32_t previous, const uint8_t* p, size_t n) { return ~chosen()(~previous, p, n); }

uint32_t computeSoftware(uint32_t previous, const uint8_t* p, size_t n) { return ~updateSoftware(~previous, p, n); }

uint32_t computeSse42(uint32_t previous, const uint8_t* p, size_t n) {
  static const Update update = hasHardware() ? updateHardware : updateSoftware;
  return ~update(~previous, p, n);
}

const char* implementationName() {
  const Update update = chosen();
  return update == updateSoftware ? "slicing-by-8" : update == updateHardware ? "sse4.2+pclmul" : "vpclmulqdq+sse4.2";
}

}  // namespace lunrig::crc32c
