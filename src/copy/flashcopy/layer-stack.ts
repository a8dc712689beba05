/**
 * Putting FlashCopy layers on volumes and taking them off, several volumes at
 * once. `holdStacks` drains every stack and holds new requests on all of them
 * while `change` runs, and no request moves again before every top is
 * swapped: that instant is the T0 of every relationship established in it
 * (one T0 for a consistency group), and the instant a withdraw takes effect.
 */
import type { VolumeStack } from '../../volume/volume-stack.js';
import type { Volume } from '../../volume/volume.js';
import type { SourceLayer } from './source-layer.js';
import type { TargetLayer } from './target-layer.js';

export type Tops = Map<VolumeStack, Volume>;

/**
 * Run `change` with every stack drained and held; it gets each stack's top
 * and returns the new tops (a stack it leaves out keeps its top). Stacks are
 * taken in a fixed order (by volume name) so two callers can never each hold
 * one and wait for the other's.
 */
export async function holdStacks(stacks: Iterable<VolumeStack>, change: (tops: Tops) => Promise<Tops>): Promise<void> {
  const order = [...new Set(stacks)].sort((a, b) => compare(a.identity().name, b.identity().name));
  const held: Tops = new Map();
  let next: Tops | undefined;
  const hold = async (i: number): Promise<void> => {
    if (i === order.length) {
      next = await change(new Map(held));
      return;
    }
    const stack = order[i]!;
    await stack.restack(async (top) => {
      held.set(stack, top);
      await hold(i + 1);
      return next!.get(stack) ?? top;
    });
  };
  await hold(0);
}

/**
 * The top after removing `layer` from a stack whose top is `top`: a layer on
 * top comes off; one buried under other layers is detached and stays as a
 * pass-through (the layer above holds it as its `below`).
 */
export function withoutLayer(top: Volume, layer: SourceLayer | TargetLayer): Volume {
  layer.detach();
  return top === layer ? layer.below : top;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
