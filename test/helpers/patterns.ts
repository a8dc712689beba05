/**
 * Deterministic pseudo-random bytes (xorshift32, low byte of each step): the same
 * (length, seed) always gives the same bytes, and pattern(n, seed) is a prefix of
 * pattern(n + k, seed). Seed 0 (which xorshift cannot use) gets its own fixed
 * state rather than sharing seed 1's bytes, so pattern(n, 0) and pattern(n, 1)
 * differ; every other seed gives the same bytes as the test-local copies this replaced.
 */
export function pattern(length: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
