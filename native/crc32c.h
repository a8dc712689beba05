// CRC32C (Castagnoli): reflected polynomial 0x82F63B78, init and xorout
// 0xffffffff. `previous` is a finished CRC, so crc32c(b, crc32c(a)) equals
// the CRC of a followed by b.
#ifndef LUNRIG_CRC32C_H
#define LUNRIG_CRC32C_H

#include <cstddef>
#include <cstdint>

namespace lunrig::crc32c {

// Fastest implementation this CPU supports.
uint32_t compute(uint32_t previous, const uint8_t* p, size_t n);
// Portable slicing-by-8, exposed so tests can check it on any CPU.
uint32_t computeSoftware(uint32_t previous, const uint8_t* p, size_t n);
// The SSE4.2 crc32 path, or slicing-by-8 without SSE4.2: what compute() uses
// for short buffers, exposed so tests can check it on any length.
uint32_t computeSse42(uint32_t previous, const uint8_t* p, size_t n);
// "vpclmulqdq+sse4.2", "sse4.2+pclmul" or "slicing-by-8": which one compute()
// uses (the first still takes the SSE4.2 path below 512 bytes).
const char* implementationName();

}  // namespace lunrig::crc32c

#endif
