/**
 * Group commit for one file on the fs engine: callers that ask for durability
 * while an fdatasync is running share the next one, so N concurrent FUA writes
 * cost at most two fdatasyncs instead of N. A caller's promise resolves only
 * after an fdatasync that started after its call.
 */
export class DatasyncGate {
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  /** A failed fdatasync fails every later one: the kernel reports a writeback error only once. */
  private failure: unknown;

  constructor(
    private readonly datasync: () => Promise<void>,
    private readonly counted: () => void,
  ) {}

  sync(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (!this.running) return this.start();
    this.next ??= this.running.then(
      () => this.startNext(),
      () => this.startNext(),
    );
    return this.next;
  }

  private startNext(): Promise<void> {
    this.next = undefined;
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return this.start();
  }

  private start(): Promise<void> {
    this.counted();
    const run = this.datasync()
      .catch((err: unknown) => {
        this.failure ??= err;
        throw err;
      })
      .finally(() => {
        if (this.running === run) this.running = undefined;
      });
    this.running = run;
    return run;
  }
}
