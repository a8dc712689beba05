import { mulberry32 } from '../fixtures/mulberry32.mjs';

/** Deterministic PRNG (mulberry32) so failing runs can be replayed from the printed seed. */
export function seededRandom(seed: number): () => number {
  return mulberry32(seed);
}

/** The seed for this run: $LUNRIG_SEED or a fixed default, printed so a failure can be replayed. */
export function testSeed(label: string, fallback = 0x5eed): number {
  const env = process.env.LUNRIG_SEED;
  const seed = env ? Number.parseInt(env, 10) : fallback;
  console.log(`[${label}] seed=${seed} (set LUNRIG_SEED to replay)`);
  return seed;
}
