/**
 * HDLM's extended algorithms (exrr, exlio, exlbk) as a modifier over a base
 * selector (spec §1.3): an I/O sequential with the one before stays on that
 * one's path until `sequentialLimit` I/Os went there in a row
 * (-expathusetimes, default 100); other I/Os reselect every `randomRepeat`
 * I/Os (-exrndpathusetimes, default 1). dm has no such selector.
 */
import { isSequential, type IoDescriptor } from '../io-descriptor.js';
import type { Path } from '../path.js';
import type { PathSelector } from './selector.js';

export interface ExtendedOptions {
  sequentialLimit: number;
  randomRepeat: number;
}

export class ExtendedSelector implements PathSelector {
  readonly name: string;
  private prev: IoDescriptor | undefined;
  private last: Path | undefined;
  private used = 0;

  constructor(
    private readonly base: PathSelector,
    private readonly options: ExtendedOptions,
  ) {
    this.name = `extended_${base.name}`;
  }

  select(candidates: readonly Path[], io: IoDescriptor): Path {
    const limit = isSequential(this.prev, io) ? this.options.sequentialLimit : this.options.randomRepeat;
    this.prev = io;
    if (this.last && this.used < limit && candidates.includes(this.last)) {
      this.used++;
      return this.last;
    }
    this.last = this.base.select(candidates, io);
    this.used = 1;
    return this.last;
  }
}
