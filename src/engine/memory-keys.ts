import { randomInt } from "node:crypto";
import { packUuid } from "./ids.js";
import { CLIENT_ID_PACKED, ID_PACKED, Segment } from "./memory-key-segment.js";

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
 * Here a key is one entry of typed arrays (its hash, the older entry of its
 * hash bucket, time, sequence, its room's keyId, where its text is) plus
 * a reference to a string that lives anyway (the sender's name); its
 * client_message_id and message id are bytes beside them. Entries are
 * numbered by a slot that only grows; slots [head, tail) are remembered, in segments of a fixed number of entries, each with its
 * own text: the table grows a segment at a time and copies nothing (on
 * this VM, a doubling array's copies and first touches cost as much as the
 * rest of a key), and a segment whose keys all expired is reused. A bucket
 * holds the newest slot of its chain, each entry the next older one: since
 * keys expire oldest first, an expired key is always the end of its chain,
 * so expiry is `head++` and a lookup stops at the first slot below head.
 * Nothing is ever unlinked; only the buckets are rebuilt as they double or
 * halve. A bucket holds its slot + 1 (0: none), so a new bucket array needs
 * no filling: its zeroed pages are touched as they are used.
 *
 * Doubling does not relink every key at once: at two million keys that
 * was one add of 280 ms, a pause of the event loop for every stream. The
 * keys move to the new buckets oldest first, some per add after it
 * (MIGRATE_PER_ADD), while both arrays answer: slots from `migrated` on are
 * in the old buckets (keys added meanwhile go there too, so every chain
 * stays newest first), older ones in the new. A lookup walks the old chain
 * down to `migrated` and goes on in the new one. The move ends long before
 * the table could double again (it moves MIGRATE_PER_ADD keys per add and
 * has as many adds as keys it held before the next doubling).
 *
 * A bucket is chosen by the client_message_id, room and sender together, so
 * clients counting "1", "2", … per room over many rooms do not share chains.
 */
export interface RememberedKey {
  sequence: bigint;
  id: string;
  timeMs: number;
}

/**
 * The number a room's keys are stored under, new for each room and each of
 * its epochs (nextKeyId()): a cleared room takes a new one, so its old keys
 * no longer match, and a room forgotten and written again is a new room.
 */
let lastKeyId = 0;
export function nextKeyId(): number {
  return ++lastKeyId;
}

/** What a key belongs to: a room's state. */
export interface KeyRoom {
  /**
   * The room in its current epoch (nextKeyId()). A number, not the room
   * object and its epoch string: two references per key for every major
   * GC to follow, and at 10,000 rooms a one-room memo of the room's hash
   * missed on every publish.
   */
  keyId: number;
  /**
   * The slot of the room's newest key (-1: none yet), set by add(): the
   * room has keys remembered while that slot is (remembers()). A slot and
   * not a count, so that expiry never touches the rooms of the keys it
   * forgets: at 10,000 rooms each was a room object cold in the CPU's
   * caches, one per publish.
   */
  lastKeySlot: number;
}

/** Entries per segment (and the table's smallest size). */
const SEGMENT = 4096;
/** Emptied segments kept for the next ones (steady state: one empties as another starts). */
const SPARE = 2;
/** Keys moved per add while they move (see above): 32 ends a move of two million keys within ~60,000 adds. */
const MIGRATE_PER_ADD = 32;

/** FNV-1a over a string's UTF-16 code units from `seed`, for the sender's share of a hash. */
function hashText(s: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

export class DedupeKeys<Room extends KeyRoom = KeyRoom> {
  /** Entries per segment, a power of two. */
  private readonly segmentSize: number;
  /** The segments of slots [head, tail): the one of slot s at ((s / segmentSize) >>> 0) & ringMask. */
  private ring: Array<Segment | undefined> = new Array<Segment | undefined>(4).fill(undefined);
  private readonly spare: Array<Segment> = [];
  /** Segments allocated so far: a window of steady size reuses them instead. */
  segmentsAllocated = 0;
  /** Bucket → its newest slot + 1 (0: none); at least twice as many buckets as keys. */
  private buckets: Float64Array;
  /** While keys move to doubled buckets: the buckets before, holding the slots from `migrated` on. */
  private oldBuckets: Float64Array | undefined;
  /** The oldest slot not moved yet to `buckets` (at least head). */
  private migrated = 0;
  /** Oldest slot still remembered, and the next slot to give out. */
  private head = 0;
  private tail = 0;

  // The last client_message_id encoded (find() and then add() take the same one), and its bytes and hash.
  private probe = Buffer.allocUnsafeSlow(512);
  private probeText: string | undefined;
  private probeLength = 0;
  private probeHash = 0;
  /** The probe holds a packed UUID (the client_message_id was one), not UTF-8. */
  private probePacked = false;
  /** The message id being added, packed (when it is a UUID). */
  private readonly packedId = new Uint8Array(16);
  // A one-entry memo of the sender's hash (a publisher sends many, as one sender).
  private lastSender: string | undefined;
  private lastSenderHash = 0;

  /**
   * `segment`: entries per segment, rounded up to a power of two (tests use
   * small ones). `seed`: where the hashes start (FNV-1a's offset basis),
   * random by default, so ids that collide cannot be chosen in advance to
   * lengthen other keys' chains (as V8 seeds its own string hashes).
   */
  constructor(
    segment = SEGMENT,
    private readonly seed = randomInt(0x100000000) | 0,
  ) {
    let n = 2;
    while (n < segment) n *= 2;
    this.segmentSize = n;
    this.buckets = new Float64Array(2 * n);
  }

  /** Whether keys are still moving to doubled buckets (for tests). */
  get moving(): boolean {
    return this.oldBuckets !== undefined;
  }

  /** Keys remembered. */
  get size(): number {
    return this.tail - this.head;
  }

  /** Bytes the table holds: its segments (the spare ones too) and buckets. */
  get bytes(): number {
    let bytes = this.buckets.byteLength + (this.oldBuckets?.byteLength ?? 0);
    for (const segment of this.ring) bytes += segment?.bytes ?? 0;
    for (const segment of this.spare) bytes += segment.bytes;
    return bytes;
  }

  /** Whether any key of `room` is still remembered (a room with one is not forgotten). */
  remembers(room: Room): boolean {
    return room.lastKeySlot >= this.head;
  }

  find(room: Room, sender: string, clientMessageId: string): RememberedKey | undefined {
    const hash = this.hashOf(room, sender, clientMessageId);
    const old = this.oldBuckets;
    if (old !== undefined) {
      const found = this.findIn(old, this.migrated, hash, room, sender);
      if (found !== undefined) return found;
    }
    return this.findIn(this.buckets, this.head, hash, room, sender);
  }

  /** The key in `table`'s chain of `hash`, walked down to slot `from`. */
  private findIn(table: Float64Array, from: number, hash: number, room: Room, sender: string): RememberedKey | undefined {
    const { segmentSize, ring } = this;
    const index = segmentSize - 1;
    const ringMask = ring.length - 1;
    // Entries hold slot + 1: slot >= from.
    for (let entry = table[hash & (table.length - 1)]!; entry > from; ) {
      const slot = entry - 1;
      const segment = ring[((slot / segmentSize) >>> 0) & ringMask]!;
      const i = slot & index;
      if (segment.hashes[i] === hash && segment.roomIds[i] === room.keyId && segment.senders[i] === sender && segment.holdsClientId(i, this.probe, this.probeLength, this.probePacked)) {
        return { sequence: BigInt(segment.sequences[i]!), id: segment.idOf(i), timeMs: segment.times[i]! };
      }
      entry = segment.nexts[i]!;
    }
    return undefined;
  }

  /** Remembers a key not remembered yet (find() missed). */
  add(room: Room, sender: string, clientMessageId: string, sequence: bigint, id: string, timeMs: number): void {
    const hash = this.hashOf(room, sender, clientMessageId);
    const clientIdLength = this.probeLength;
    if ((this.size + 1) * 2 > this.buckets.length) this.double();

    const slot = this.tail++;
    const i = slot & (this.segmentSize - 1);
    const segment = i === 0 ? this.startSegment(slot) : this.segmentOf(slot);
    // Room for the message id packed, or for its longest UTF-8 (3 bytes a UTF-16 unit); written as ASCII unless it is not.
    const idPacked = packUuid(id, this.packedId, 0);
    segment.reserveText(clientIdLength + (idPacked ? 16 : 3 * id.length));
    const { text, textAt } = segment;
    const { probe } = this;
    const start = segment.textUsed;
    textAt[i] = start;
    for (let b = 0; b < clientIdLength; b++) text[start + b] = probe[b]!;
    const idAt = start + clientIdLength;
    let idLength = 0;
    if (idPacked) {
      text.set(this.packedId, idAt);
      idLength = 16;
    } else {
      for (; idLength < id.length; idLength++) {
        const c = id.charCodeAt(idLength);
        if (c >= 0x80) break;
        text[idAt + idLength] = c;
      }
      if (idLength < id.length) idLength = Buffer.from(text.buffer, text.byteOffset, text.length).write(id, idAt, "utf8");
    }
    segment.textUsed = idAt + idLength;
    segment.clientIdBytes[i] = clientIdLength;
    segment.idBytes[i] = idLength;
    segment.packed[i] = (this.probePacked ? CLIENT_ID_PACKED : 0) | (idPacked ? ID_PACKED : 0);
    segment.hashes[i] = hash;
    segment.times[i] = timeMs;
    segment.sequences[i] = Number(sequence);
    segment.roomIds[i] = room.keyId;
    segment.senders[i] = sender;
    // While keys move, new ones join the old buckets' chains, which hold the newest.
    const table = this.oldBuckets ?? this.buckets;
    const bucket = hash & (table.length - 1);
    segment.nexts[i] = table[bucket]!;
    table[bucket] = slot + 1;
    room.lastKeySlot = slot;
    if (this.oldBuckets !== undefined) this.migrate(MIGRATE_PER_ADD);
  }

  /** Forgets keys older than `oldest` (ms), oldest first, stopping at the first younger one. */
  expire(oldest: number): void {
    let head = this.head;
    if (head === this.tail || this.segmentOf(head).times[head & (this.segmentSize - 1)]! >= oldest) return;
    const index = this.segmentSize - 1;
    while (head < this.tail) {
      const segment = this.segmentOf(head);
      const i = head & index;
      if (segment.times[i]! >= oldest) break;
      segment.senders[i] = undefined;
      head++;
      // A segment all of whose keys expired goes (none is written after its last slot).
      if ((head & index) === 0) this.endSegment(head - 1);
    }
    this.head = head;
    if (this.oldBuckets !== undefined) this.migrate(0);
    // Give the buckets' memory back once they are far emptier than they need be (all at once: the table is small by then).
    if (this.buckets.length > 2 * this.segmentSize && this.size * 8 < this.buckets.length) {
      this.migrate(Infinity);
      this.rebuildBuckets(this.buckets.length / 2);
    }
  }

  private segmentOf(slot: number): Segment {
    return this.ring[((slot / this.segmentSize) >>> 0) & (this.ring.length - 1)]!;
  }

  /** The segment whose first slot is `slot`: a spare one, or new; the ring doubles if it is full. */
  private startSegment(slot: number): Segment {
    const segments = Math.floor(slot / this.segmentSize) - Math.floor(this.head / this.segmentSize) + 1;
    if (segments > this.ring.length) {
      const ring = new Array<Segment | undefined>(2 * this.ring.length).fill(undefined);
      for (let s = this.head; s < slot; s += this.segmentSize) ring[((s / this.segmentSize) >>> 0) & (ring.length - 1)] = this.segmentOf(s);
      this.ring = ring;
    }
    let segment = this.spare.pop();
    if (!segment) {
      segment = new Segment(this.segmentSize);
      this.segmentsAllocated++;
    }
    segment.textUsed = 0;
    this.ring[((slot / this.segmentSize) >>> 0) & (this.ring.length - 1)] = segment;
    return segment;
  }

  /** The segment of `slot` (whose keys all expired) leaves the ring; a few are kept for reuse. */
  private endSegment(slot: number): void {
    const at = ((slot / this.segmentSize) >>> 0) & (this.ring.length - 1);
    const segment = this.ring[at]!;
    this.ring[at] = undefined;
    if (this.spare.length < SPARE) this.spare.push(segment);
  }

  /** Buckets of `size` (a power of two), linked anew from the remembered keys, oldest first. */
  private rebuildBuckets(size: number): void {
    this.buckets = new Float64Array(size);
    this.link(this.head, this.tail);
  }

  /** Links slots from..to-1, oldest first, into `buckets`' chains (each becomes its chain's newest). */
  private link(from: number, to: number): void {
    const { buckets } = this;
    const mask = buckets.length - 1;
    const index = this.segmentSize - 1;
    for (let slot = from; slot < to; slot++) {
      const segment = this.segmentOf(slot);
      const i = slot & index;
      const bucket = segment.hashes[i]! & mask;
      segment.nexts[i] = buckets[bucket]!;
      buckets[bucket] = slot + 1;
    }
  }

  /** Twice the buckets; the keys move to them over the next adds (migrate()). */
  private double(): void {
    this.migrate(Infinity); // a move still under way ends first (it never is, see above)
    this.oldBuckets = this.buckets;
    this.buckets = new Float64Array(2 * this.buckets.length);
    this.migrated = this.head;
    this.migrate(0);
  }

  /** Moves up to `count` keys, oldest first, from the old buckets to the new; forgets the old ones once none is left. */
  private migrate(count: number): void {
    if (this.oldBuckets === undefined) return;
    const from = Math.max(this.migrated, this.head);
    this.migrated = Math.min(this.tail, from + count);
    this.link(from, this.migrated);
    if (this.migrated >= this.tail) this.oldBuckets = undefined;
  }

  /**
   * The key's hash: of the client_message_id's bytes (encoded into `probe`,
   * kept for add()), mixed with the room's keyId and the sender's name.
   */
  private hashOf(room: Room, sender: string, clientMessageId: string): number {
    if (clientMessageId !== this.probeText) this.encodeProbe(clientMessageId);
    if (sender !== this.lastSender) {
      this.lastSender = sender;
      this.lastSenderHash = hashText(sender, this.seed);
    }
    // The room's share is of its keyId: no text to read.
    let h = Math.imul(this.probeHash ^ Math.imul(room.keyId ^ this.seed, 0x9e3779b1), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 15) ^ this.lastSenderHash, 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  /**
   * Encodes a client_message_id into `probe` as it is stored, hashing its
   * bytes (FNV-1a from the seed): a UUID packed (16 bytes), anything else as
   * UTF-8.
   */
  private encodeProbe(s: string): void {
    if (this.probe.length < s.length * 3) this.probe = Buffer.allocUnsafeSlow(s.length * 3);
    const { probe } = this;
    let h = this.seed;
    let n = 0;
    this.probeText = s;
    this.probePacked = packUuid(s, probe, 0);
    if (this.probePacked) {
      for (; n < 16; n++) h = Math.imul(h ^ probe[n]!, 0x01000193);
      this.probeLength = 16;
      this.probeHash = h;
      return;
    }
    for (; n < s.length; n++) {
      const c = s.charCodeAt(n);
      if (c >= 0x80) break;
      probe[n] = c;
      h = Math.imul(h ^ c, 0x01000193);
    }
    if (n < s.length) {
      n = probe.write(s, 0, "utf8");
      h = this.seed;
      for (let b = 0; b < n; b++) h = Math.imul(h ^ probe[b]!, 0x01000193);
    }
    this.probeText = s;
    this.probeLength = n;
    this.probeHash = h;
  }

}
