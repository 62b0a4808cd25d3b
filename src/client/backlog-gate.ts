/**
 * Holds back a room's live output while its backlog (the messages before
 * the subscription, option `backlog`) is fetched, so that the application
 * gets the backlog first and then the live messages, in order. Pure
 * bookkeeping; the subscription does the fetching and the emitting.
 */
export class BacklogGate<T> {
  private readonly holding = new Map<string, T[]>();

  /**
   * Holds `room`'s output until `fetch` settles, then passes what was held
   * to `release`; nothing is released if the room was dropped meanwhile.
   */
  hold(room: string, fetch: () => Promise<void>, release: (held: T[]) => void): void {
    const held: T[] = [];
    this.holding.set(room, held);
    void fetch()
      .catch(() => {})
      .then(() => {
        if (this.holding.get(room) !== held) return;
        this.holding.delete(room);
        release(held);
      });
  }

  /** Whether `room`'s fetch is still pending (a result must then be dropped if it is no longer). */
  isHolding(room: string): boolean {
    return this.holding.has(room);
  }

  /** Keeps `outputs` back if the room is held; false when they may go out now. */
  offer(room: string, outputs: T[]): boolean {
    const held = this.holding.get(room);
    if (!held) return false;
    held.push(...outputs);
    return true;
  }

  /** The room was left: what it held is dropped. */
  drop(room: string): void {
    this.holding.delete(room);
  }
}
