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
// "sse4.2+pclmul" or "slicing-by-8": which one compute() uses.
const char* implementationName();

}  // namespace lunrig::crc32c

#endif
