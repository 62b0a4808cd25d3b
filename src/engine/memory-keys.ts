/**
 * The memory engine's idempotency keys: (room, sender, client_message_id) →
 * the position, id and time of the message the first publish stored,
 * oldest first, forgotten once older than the window.
 *
 * One table for every room, not one per room: at 10,000 rooms a table per
 * room meant a publish touched that room's maps and five arrays, each cold
 * in the CPU's caches (bench "Publish cost", every room full: ~0.7 us of
 * the 10,000-room side's extra per publish in a profile). Here a publish
 * touches one map and appends to arrays whose tails are shared and warm;
 * keys also expire in one pass, in publish order.
 *
 * Kept lean because a window holds every keyed publish of the last
 * `--dedupe-window` (2 minutes by default; at 10,000 keyed publishes/s,
 * 1.2 million keys): no key string is built (the map is keyed by the
 * client_message_id string as it arrived, which the message shares; keys of
 * the same client_message_id in other rooms or from other senders are
 * chained), no object or BigInt per key (positions and times in arrays of
 * numbers).
 */
export interface RememberedKey {
  sequence: bigint;
  id: string;
  timeMs: number;
}

/** What a key belongs to: a room's state, and its epoch (a cleared room's old keys no longer match). */
export interface KeyRoom {
  epoch: string;
  /** Keys of this room still remembered (a room with any is not forgotten). */
  keyCount: number;
}

const NONE = -1;

export class DedupeKeys<Room extends KeyRoom = KeyRoom> {
  /** client_message_id → slot of its newest key (absolute slot number: `base` + array index). */
  private readonly newest = new Map<string, number>();
  // One entry per key, in insertion order (the order of their publishes).
  private rooms: Array<Room | undefined> = [];
  private epochs: string[] = [];
  private senders: string[] = [];
  private clientIds: string[] = [];
  private ids: string[] = [];
  /** Slot of the next older key with the same client_message_id (NONE: none). */
  private older: number[] = [];
  /** Sequences as numbers: exact below 2^53, which a room's sequence never reaches. */
  private sequences: number[] = [];
  private times: number[] = [];
  /** Array index of the oldest key still remembered. */
  private head = 0;
  /** Slot number of array index 0. */
  private base = 0;

  /** Keys remembered. */
  get size(): number {
    return this.times.length - this.head;
  }

  find(room: Room, sender: string, clientMessageId: string): RememberedKey | undefined {
    const first = this.base + this.head;
    for (let slot = this.newest.get(clientMessageId) ?? NONE; slot >= first; slot = this.older[slot - this.base]!) {
      const i = slot - this.base;
      if (this.rooms[i] === room && this.epochs[i] === room.epoch && this.senders[i] === sender)
        return { sequence: BigInt(this.sequences[i]!), id: this.ids[i]!, timeMs: this.times[i]! };
    }
    return undefined;
  }

  /** Remembers a key not remembered yet (find() missed). */
  add(room: Room, sender: string, clientMessageId: string, sequence: bigint, id: string, timeMs: number): void {
    const slot = this.base + this.times.length;
    this.older.push(this.newest.get(clientMessageId) ?? NONE);
    this.newest.set(clientMessageId, slot);
    this.rooms.push(room);
    this.epochs.push(room.epoch);
    this.senders.push(sender);
    this.clientIds.push(clientMessageId);
    this.ids.push(id);
    this.sequences.push(Number(sequence));
    this.times.push(timeMs);
    room.keyCount++;
  }

  /** Forgets keys older than `oldest` (ms), oldest first, stopping at the first younger one. */
  expire(oldest: number): void {
    const { times } = this;
    let head = this.head;
    if (head >= times.length || times[head]! >= oldest) return;
    while (head < times.length && times[head]! < oldest) {
      const clientId = this.clientIds[head]!;
      // Newer keys of the same client_message_id chain to this one; their walk stops at the head.
      if (this.newest.get(clientId) === this.base + head) this.newest.delete(clientId);
      this.rooms[head]!.keyCount--;
      this.rooms[head] = undefined;
      head++;
    }
    this.head = head;
    // Compact once the dead prefix dominates, so forgetting stays amortised O(1).
    if (head > 1024 && head * 2 > times.length) {
      this.rooms = this.rooms.slice(head);
      this.epochs = this.epochs.slice(head);
      this.senders = this.senders.slice(head);
      this.clientIds = this.clientIds.slice(head);
      this.ids = this.ids.slice(head);
      this.older = this.older.slice(head);
      this.sequences = this.sequences.slice(head);
      this.times = times.slice(head);
      this.base += head;
      this.head = 0;
    }
  }
}
