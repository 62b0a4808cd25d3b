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
 * 1.2 million keys): no key string is built for a client_message_id seen
 * once in the window (the map is keyed by the string as it arrived, which
 * the message shares), no object or BigInt per key (positions and times in
 * arrays of numbers). A client_message_id that two rooms or two senders use
 * in the same window (clients counting "1", "2", … per room) is looked up
 * by a key of room, sender and id in a second map, so no lookup ever walks
 * a list of the id's other users.
 */
export interface RememberedKey {
  sequence: bigint;
  id: string;
  timeMs: number;
}

/** What a key belongs to: a room's state, and its epoch (a cleared room's old keys no longer match). */
export interface KeyRoom {
  name: string;
  epoch: string;
  /** Keys of this room still remembered (a room with any is not forgotten). */
  keyCount: number;
}

/** A key of the second map. Room names hold no NUL and the id's length comes first, so no two (room, sender, id) join alike. */
const joined = (room: string, sender: string, clientMessageId: string) => `${clientMessageId.length}\0${clientMessageId}\0${sender}\0${room}`;

export class DedupeKeys<Room extends KeyRoom = KeyRoom> {
  /**
   * client_message_id → the slot of its one key (absolute slot number:
   * `base` + array index), or, for an id that more than one room or sender
   * used in the window, minus the number of its keys in `shared`.
   */
  private readonly byId = new Map<string, number>();
  /** joined(room, sender, id) → slot, for the ids byId counts as shared. */
  private readonly shared = new Map<string, number>();
  // One entry per key, in insertion order (the order of their publishes).
  private rooms: Array<Room | undefined> = [];
  private epochs: string[] = [];
  private senders: string[] = [];
  private clientIds: string[] = [];
  private ids: string[] = [];
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
    const entry = this.byId.get(clientMessageId);
    if (entry === undefined) return undefined;
    const slot = entry >= 0 ? entry : this.shared.get(joined(room.name, sender, clientMessageId));
    if (slot === undefined) return undefined;
    const i = slot - this.base;
    if (i < this.head || this.rooms[i] !== room || this.epochs[i] !== room.epoch || this.senders[i] !== sender) return undefined;
    return { sequence: BigInt(this.sequences[i]!), id: this.ids[i]!, timeMs: this.times[i]! };
  }

  /** Remembers a key not remembered yet (find() missed). */
  add(room: Room, sender: string, clientMessageId: string, sequence: bigint, id: string, timeMs: number): void {
    const slot = this.base + this.times.length;
    const entry = this.byId.get(clientMessageId);
    if (entry === undefined) this.byId.set(clientMessageId, slot);
    else if (entry >= 0) {
      const i = entry - this.base;
      if (this.rooms[i]!.name === room.name && this.senders[i] === sender) this.byId.set(clientMessageId, slot); // the same key of an older epoch
      else {
        // A second user of the id: both keys go to the second map.
        this.shared.set(joined(this.rooms[i]!.name, this.senders[i]!, clientMessageId), entry);
        this.shared.set(joined(room.name, sender, clientMessageId), slot);
        this.byId.set(clientMessageId, -2);
      }
    } else {
      const key = joined(room.name, sender, clientMessageId);
      if (!this.shared.has(key)) this.byId.set(clientMessageId, entry - 1);
      this.shared.set(key, slot);
    }
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
      this.forget(head);
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
      this.sequences = this.sequences.slice(head);
      this.times = times.slice(head);
      this.base += head;
      this.head = 0;
    }
  }

  /** Drops the key at array index `i` from the maps, if they still lead to it (a newer key of the same room, sender and id replaces it). */
  private forget(i: number): void {
    const clientId = this.clientIds[i]!;
    const room = this.rooms[i]!;
    const slot = this.base + i;
    const entry = this.byId.get(clientId)!;
    if (entry === slot) this.byId.delete(clientId);
    else if (entry < 0) {
      const key = joined(room.name, this.senders[i]!, clientId);
      if (this.shared.get(key) === slot) {
        this.shared.delete(key);
        if (entry === -1) this.byId.delete(clientId);
        else this.byId.set(clientId, entry + 1);
      }
    }
    room.keyCount--;
    this.rooms[i] = undefined;
  }
}
