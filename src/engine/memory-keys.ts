/**
 * The memory engine's idempotency keys: (room, sender, client_message_id) →
 * the position, id and time of the message the first publish stored,
 * oldest first, forgotten once older than the window.
 *
 * One table for every room (at 10,000 rooms a table per room meant a publish
 * touched that room's own maps and arrays, each cold in the CPU's caches),
 * and no JavaScript object or string per key: a window holds every keyed
 * publish of the last `--dedupe-window` (2 minutes by default; at 10,000
 * keyed publishes/s, 1.2 million keys). Keys in a Map and seven arrays of
 * strings and numbers cost ~2.4 us of the broker's ~7.4 us per publish in
 * the ingest bench (each client_message_id and message id a young string
 * the collector promoted, every array and the map growing by copying into
 * fresh memory, whose first touch costs ~12 us a 4 KiB page on this VM).
 *
 * Here a key is one entry of a ring of typed arrays (its hash, the older
 * entry of its hash bucket, time, sequence, where its text is) plus three
 * references to strings and objects that live anyway (its room, the room's
 * epoch, the sender's name); its client_message_id and message id are bytes
 * in a ring of text. Entries are numbered by a slot that only grows; the
 * ring holds slots [head, tail). A bucket holds the newest slot of its
 * chain, each entry the next older one: since keys expire oldest first, an
 * expired key is always the end of its chain, so expiry is `head++` and a
 * lookup stops at the first slot below head. Nothing is ever unlinked.
 *
 * A bucket is chosen by the client_message_id, room and sender together, so
 * clients counting "1", "2", … per room over many rooms do not share chains.
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

/** Entries below which the table does not shrink (and its default first size). */
const MIN_ENTRIES = 1024;
/** Text bytes per entry the ring starts with: a 36-character UUID each for the client_message_id and the message id. */
const TEXT_PER_ENTRY = 80;

/** FNV-1a over a string's UTF-16 code units, for the room's and sender's share of a hash. */
function hashText(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

/** The keys' fields, an array each (a power of two long): slot s is at index s & (size - 1). */
class Entries<Room> {
  readonly hashes: Int32Array;
  /** The next older slot of the same bucket (or -1). */
  readonly nexts: Float64Array;
  readonly times: Float64Array;
  /** Sequences as numbers: exact below 2^53, which a room's sequence never reaches. */
  readonly sequences: Float64Array;
  /** Where the entry's text starts (an absolute byte position in the text ring): its client_message_id, then its message id. */
  readonly textAt: Float64Array;
  readonly clientIdBytes: Uint16Array;
  readonly idBytes: Uint16Array;
  readonly rooms: Array<Room | undefined>;
  readonly epochs: Array<string | undefined>;
  readonly senders: Array<string | undefined>;

  constructor(readonly size: number) {
    this.hashes = new Int32Array(size);
    this.nexts = new Float64Array(size);
    this.times = new Float64Array(size);
    this.sequences = new Float64Array(size);
    this.textAt = new Float64Array(size);
    this.clientIdBytes = new Uint16Array(size);
    this.idBytes = new Uint16Array(size);
    this.rooms = new Array<Room | undefined>(size).fill(undefined);
    this.epochs = new Array<string | undefined>(size).fill(undefined);
    this.senders = new Array<string | undefined>(size).fill(undefined);
  }

  get bytes(): number {
    const typed = [this.hashes, this.nexts, this.times, this.sequences, this.textAt, this.clientIdBytes, this.idBytes];
    return typed.reduce((sum, array) => sum + array.byteLength, 0) + 3 * 8 * this.size;
  }

  /** Copies `source`'s entry at index `from` here, at index `to` (all but its bucket link). */
  copy(source: Entries<Room>, from: number, to: number): void {
    this.hashes[to] = source.hashes[from]!;
    this.times[to] = source.times[from]!;
    this.sequences[to] = source.sequences[from]!;
    this.textAt[to] = source.textAt[from]!;
    this.clientIdBytes[to] = source.clientIdBytes[from]!;
    this.idBytes[to] = source.idBytes[from]!;
    this.rooms[to] = source.rooms[from];
    this.epochs[to] = source.epochs[from];
    this.senders[to] = source.senders[from];
  }
}

export class DedupeKeys<Room extends KeyRoom = KeyRoom> {
  private readonly minEntries: number;
  private entries: Entries<Room>;
  /** entries.size - 1. */
  private mask: number;
  /** Bucket → its newest slot (or -1); twice as many buckets as entries. */
  private buckets: Float64Array;
  /** The text ring: absolute byte position p is at p & textMask. */
  private text: Uint8Array;
  private textMask: number;
  /** Oldest slot still remembered, and the next slot to give out. */
  private head = 0;
  private tail = 0;
  /** Next absolute text position to write. */
  private textTail = 0;

  // The last client_message_id encoded (find() and then add() take the same one), and its bytes and hash.
  private probe = Buffer.allocUnsafeSlow(512);
  private probeText: string | undefined;
  private probeLength = 0;
  private probeHash = 0;
  // One-entry memos of the room's and sender's hashes (a publisher sends many to one room, as one sender).
  private lastRoom: Room | undefined;
  private lastRoomHash = 0;
  private lastSender: string | undefined;
  private lastSenderHash = 0;
  /** The message id's bytes, when it is not ASCII. */
  private scratch = Buffer.allocUnsafeSlow(512);

  /** `entries`: the table's first (and smallest) size, rounded up to a power of two. */
  constructor(entries = MIN_ENTRIES) {
    let n = 2;
    while (n < entries) n *= 2;
    this.minEntries = n;
    this.entries = new Entries(n);
    this.mask = n - 1;
    this.buckets = new Float64Array(2 * n).fill(-1);
    this.text = new Uint8Array(this.textCapacity(n * TEXT_PER_ENTRY));
    this.textMask = this.text.length - 1;
  }

  /** Keys remembered. */
  get size(): number {
    return this.tail - this.head;
  }

  /** Bytes the table holds: its typed arrays, text ring and buckets, and a reference a key for its room, epoch and sender. */
  get bytes(): number {
    return this.entries.bytes + this.buckets.byteLength + this.text.byteLength;
  }

  find(room: Room, sender: string, clientMessageId: string): RememberedKey | undefined {
    const hash = this.hashOf(room, sender, clientMessageId);
    const { mask, head, entries } = this;
    const { hashes, nexts, rooms, epochs, senders } = entries;
    for (let slot = this.buckets[hash & (this.buckets.length - 1)]!; slot >= head; slot = nexts[slot & mask]!) {
      const i = slot & mask;
      if (hashes[i] === hash && rooms[i] === room && epochs[i] === room.epoch && senders[i] === sender && this.sameClientId(i)) {
        return { sequence: BigInt(entries.sequences[i]!), id: this.idOf(i), timeMs: entries.times[i]! };
      }
    }
    return undefined;
  }

  /** Remembers a key not remembered yet (find() missed). */
  add(room: Room, sender: string, clientMessageId: string, sequence: bigint, id: string, timeMs: number): void {
    const hash = this.hashOf(room, sender, clientMessageId);
    const clientIdLength = this.probeLength;
    // The message id: written straight into the ring if ASCII (the engine's UUIDs), else encoded aside first.
    let idLength = id.length;
    let idAscii = true;
    for (let c = 0; c < id.length; c++) if (id.charCodeAt(c) >= 0x80) idAscii = false;
    if (!idAscii) {
      if (this.scratch.length < id.length * 3) this.scratch = Buffer.allocUnsafeSlow(id.length * 3);
      idLength = this.scratch.write(id, 0, "utf8");
    }
    if (this.tail - this.head > this.mask) this.resize(2 * (this.mask + 1));
    const needed = this.textTail + clientIdLength + idLength - this.textHead();
    if (needed > this.text.length) this.resizeText(this.textCapacity(needed));

    const slot = this.tail++;
    const i = slot & this.mask;
    const { text, textMask, probe, entries } = this;
    let at = this.textTail;
    entries.textAt[i] = at;
    for (let b = 0; b < clientIdLength; b++) text[at++ & textMask] = probe[b]!;
    if (idAscii) for (let c = 0; c < idLength; c++) text[at++ & textMask] = id.charCodeAt(c);
    else for (let b = 0; b < idLength; b++) text[at++ & textMask] = this.scratch[b]!;
    this.textTail = at;
    entries.clientIdBytes[i] = clientIdLength;
    entries.idBytes[i] = idLength;
    entries.hashes[i] = hash;
    entries.times[i] = timeMs;
    entries.sequences[i] = Number(sequence);
    entries.rooms[i] = room;
    entries.epochs[i] = room.epoch;
    entries.senders[i] = sender;
    const bucket = hash & (this.buckets.length - 1);
    entries.nexts[i] = this.buckets[bucket]!;
    this.buckets[bucket] = slot;
    room.keyCount++;
  }

  /** Forgets keys older than `oldest` (ms), oldest first, stopping at the first younger one. */
  expire(oldest: number): void {
    const { mask } = this;
    const { times, rooms, epochs, senders } = this.entries;
    let head = this.head;
    if (head === this.tail || times[head & mask]! >= oldest) return;
    while (head < this.tail && times[head & mask]! < oldest) {
      const i = head & mask;
      rooms[i]!.keyCount--;
      rooms[i] = undefined;
      epochs[i] = undefined;
      senders[i] = undefined;
      head++;
    }
    this.head = head;
    // Give memory back once the window holds far fewer keys than the table has room for.
    const entries = mask + 1;
    if (entries > this.minEntries && this.size * 8 < entries) this.resize(entries / 2);
    if (this.text.length > this.minEntries * TEXT_PER_ENTRY && (this.textTail - this.textHead()) * 8 < this.text.length) this.resizeText(this.text.length / 2);
  }

  /** The absolute text position of the oldest key's text (the ring's live bytes are [textHead, textTail)). */
  private textHead(): number {
    return this.head === this.tail ? this.textTail : this.entries.textAt[this.head & this.mask]!;
  }

  /** The smallest power of two holding `bytes`. */
  private textCapacity(bytes: number): number {
    let n = 1024;
    while (n < bytes) n *= 2;
    return n;
  }

  /**
   * The key's hash: of the client_message_id's bytes (encoded into `probe`,
   * kept for add()), mixed with the room's and the sender's.
   */
  private hashOf(room: Room, sender: string, clientMessageId: string): number {
    if (clientMessageId !== this.probeText) this.encodeProbe(clientMessageId);
    if (room !== this.lastRoom) {
      this.lastRoom = room;
      this.lastRoomHash = hashText(room.name);
    }
    if (sender !== this.lastSender) {
      this.lastSender = sender;
      this.lastSenderHash = hashText(sender);
    }
    let h = Math.imul(this.probeHash ^ this.lastRoomHash, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 15) ^ this.lastSenderHash, 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  /** Encodes a client_message_id as UTF-8 into `probe`, hashing its bytes (FNV-1a). */
  private encodeProbe(s: string): void {
    if (this.probe.length < s.length * 3) this.probe = Buffer.allocUnsafeSlow(s.length * 3);
    const { probe } = this;
    let h = 0x811c9dc5;
    let n = 0;
    for (; n < s.length; n++) {
      const c = s.charCodeAt(n);
      if (c >= 0x80) break;
      probe[n] = c;
      h = Math.imul(h ^ c, 0x01000193);
    }
    if (n < s.length) {
      n = probe.write(s, 0, "utf8");
      h = 0x811c9dc5;
      for (let b = 0; b < n; b++) h = Math.imul(h ^ probe[b]!, 0x01000193);
    }
    this.probeText = s;
    this.probeLength = n;
    this.probeHash = h;
  }

  /** Whether the entry at index i holds the client_message_id in `probe`. */
  private sameClientId(i: number): boolean {
    const n = this.probeLength;
    if (this.entries.clientIdBytes[i] !== n) return false;
    const { text, textMask, probe } = this;
    const at = this.entries.textAt[i]!;
    for (let b = 0; b < n; b++) if (text[(at + b) & textMask] !== probe[b]) return false;
    return true;
  }

  private idOf(i: number): string {
    const n = this.entries.idBytes[i]!;
    if (this.scratch.length < n) this.scratch = Buffer.allocUnsafeSlow(n);
    const at = this.entries.textAt[i]! + this.entries.clientIdBytes[i]!;
    for (let b = 0; b < n; b++) this.scratch[b] = this.text[(at + b) & this.textMask]!;
    return this.scratch.toString("utf8", 0, n);
  }

  /** Moves the remembered entries to a table of `size` (a power of two holding them all), rebuilding the buckets. */
  private resize(size: number): void {
    const old = this.entries;
    const oldMask = this.mask;
    const entries = (this.entries = new Entries<Room>(size));
    this.mask = size - 1;
    this.buckets = new Float64Array(2 * size).fill(-1);
    const bucketMask = this.buckets.length - 1;
    for (let slot = this.head; slot < this.tail; slot++) {
      const to = slot & this.mask;
      entries.copy(old, slot & oldMask, to);
      const bucket = entries.hashes[to]! & bucketMask;
      entries.nexts[to] = this.buckets[bucket]!;
      this.buckets[bucket] = slot;
    }
  }

  /** Moves the live text bytes to a ring of `bytes` (a power of two holding them all). */
  private resizeText(bytes: number): void {
    const old = this.text;
    this.text = new Uint8Array(bytes);
    this.textMask = bytes - 1;
    // In runs that wrap around neither ring.
    for (let p = this.textHead(); p < this.textTail; ) {
      const from = p & (old.length - 1);
      const to = p & this.textMask;
      const run = Math.min(this.textTail - p, old.length - from, bytes - to);
      this.text.set(old.subarray(from, from + run), to);
      p += run;
    }
  }
}
