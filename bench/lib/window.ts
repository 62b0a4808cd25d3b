/**
 * At most `size` messages unacknowledged: the one flow-control rule every
 * publisher of the bench follows, whatever its system calls an
 * acknowledgement (a PublishStream result, a JetStream ack, the PONG of a
 * NATS flush, the replies of a Redis pipeline). One producer takes slots,
 * acknowledgements give them back.
 */
export class Window {
  private used = 0;
  private waiter: { n: number; resolve: () => void } | undefined;
  private drainWaiters: Array<() => void> = [];

  constructor(readonly size: number) {}

  /** Takes `n` slots now if they are free. */
  tryTake(n: number): boolean {
    if (this.used + n > this.size) return false;
    this.used += n;
    return true;
  }

  /** Takes `n` slots as soon as they are free (one waiter at a time). */
  take(n: number): Promise<void> {
    if (this.tryTake(n)) return Promise.resolve();
    return new Promise((resolve) => (this.waiter = { n, resolve }));
  }

  release(n: number): void {
    this.used -= n;
    const waiter = this.waiter;
    if (waiter && this.used + waiter.n <= this.size) {
      this.waiter = undefined;
      this.used += waiter.n;
      waiter.resolve();
    }
    if (this.used === 0) for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  /** Resolves when every slot is back. */
  drained(): Promise<void> {
    if (this.used === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }
}

/**
 * Publishes `count` messages in groups of `group` with at most `size`
 * unacknowledged: `send(first, n)` sends messages first..first+n-1 and
 * resolves when they are acknowledged. Rejects with the first failure
 * (after the window drained).
 */
export async function publishWindowed(count: number, group: number, size: number, send: (first: number, n: number) => Promise<unknown>): Promise<void> {
  const window = new Window(Math.max(size, group));
  let failure: unknown;
  for (let k = 0; k < count && failure === undefined; ) {
    const n = Math.min(group, count - k);
    if (!window.tryTake(n)) await window.take(n);
    send(k, n).then(
      () => window.release(n),
      (error: unknown) => {
        failure ??= error;
        window.release(n);
      },
    );
    k += n;
  }
  await window.drained();
  if (failure !== undefined) throw failure;
}
