/** Deterministic PRNG (mulberry32) so failing runs can be replayed from the printed seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed for this run: $LUNRIG_SEED or a fixed default, printed so a failure can be replayed. */
export function testSeed(label: string, fallback = 0x5eed): number {
  const env = process.env.LUNRIG_SEED;
  const seed = env ? Number.parseInt(env, 10) : fallback;
  console.log(`[${label}] seed=${seed} (set LUNRIG_SEED to replay)`);
  return seed;
}
