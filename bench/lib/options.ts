/** Small helpers the benches share for their options and their random offsets. */

/** A positive number from the environment, else `fallback` (unset, empty, not a number, or <= 0). */
export function envNumber(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

/** A number >= 0 from an option or the environment; `fallback` when unset or empty; an error naming `what` otherwise. */
export function nonNegative(value: string | undefined, fallback: number, what: string, integer = false): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) throw new Error(`${what} must be a ${integer ? 'whole ' : ''}number >= 0, got '${value}'`);
  return n;
}

/** xorshift32: the same offsets for every contender of a round (seeded, never 0). */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
