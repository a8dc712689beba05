// Bitmap routines over raw bytes. Bit i is bit (i & 7) of byte (i >> 3), LSB
// first. Callers (addon.cc) validate ranges: every [start, start + count)
// here lies inside the nbytes * 8 bits the caller owns.
#ifndef LUNRIG_BITMAP_H
#define LUNRIG_BITMAP_H

#include <cstddef>
#include <cstdint>

namespace lunrig::bitmap {

void setRange(uint8_t* p, uint64_t start, uint64_t count);
void clearRange(uint8_t* p, uint64_t start, uint64_t count);
bool testBit(const uint8_t* p, uint64_t index);
uint64_t popcount(const uint8_t* p, uint64_t start, uint64_t count);
// First set (clear) bit in [from, limit), or -1.
int64_t findNextSet(const uint8_t* p, uint64_t from, uint64_t limit);
int64_t findNextClear(const uint8_t* p, uint64_t from, uint64_t limit);
// dst |= src and dst &= ~src over n bytes; the buffers must not overlap.
void orInto(uint8_t* __restrict dst, const uint8_t* __restrict src, size_t n);
void andNotInto(uint8_t* __restrict dst, const uint8_t* __restrict src, size_t n);

}  // namespace lunrig::bitmap

#endif
