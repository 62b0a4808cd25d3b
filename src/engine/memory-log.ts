import type { Dependency, MessageDraft, StoredMessage } from "./engine.js";
import { putShortAscii, putVarint } from "./bytes.js";
import { isImmutable } from "./dependency-codec.js";
import { bodyAt, RecordArena, type RecordOwner } from "./memory-arena.js";

/**
 * One room's retained messages in the memory engine, as bytes: every
 * message one record in the engine's arena (memory-arena.ts), found by its
 * address. Sequences are dense, so the address of sequence s is entry
 * s - `base`.
 *
 * Why bytes and not the message objects: a retained message was about
 * seven objects (the message, its id, client_message_id, payload view,
 * attributes, sequence BigInt, time), each copied twice by the young
 * generation's collector before it settled, and marked by every full
 * collection while retained. With 10,000 rooms keeping their last 100
 * messages that was most of the difference between publishing to one room
 * and to 10,000 (bench "Publish cost"). Records are copied in (the payload
 * no longer holds its request's buffer alive) and read back as new objects
 * by history reads and retried publishes only.
 *
 * Record: time (float64 LE), id, sender, client_message_id, content
 * (strings: varint byte length, UTF-8), payload (varint length, bytes),
 * attributes (varint count, key and value strings), dependencies (varint
 * count; room and epoch strings, sequence uint64 LE). The room, epoch and
 * sequence are the log's and are not repeated.
 */
export class MessageLog implements RecordOwner {
  /**
   * The retained messages' record addresses and broker times, oldest first
   * from `start`, in a ring of [address, time] pairs (numbers only: a
   * double array the collector does not trace). The ring grows by doubling
   * up to the log's limit and no further; at the limit the oldest entry
   * makes way for the new one in the same place, so a publish to a full
   * room touches one place of the ring, and trimming by age reads the time
   * from the ring, never from the record (at 10,000 rooms both were memory
   * cold in the CPU's caches).
   */
  private ring: number[] = [];
  private capacity = 0;
  private start = 0;
  private count = 0;
  /** Sequence of the oldest retained message. */
  private base = 1;
  private readonly owner: number;

  /** `limit`: messages retained at most; an append beyond drops the oldest. */
  constructor(
    private readonly arena: RecordArena,
    private readonly limit = Infinity,
  ) {
    this.owner = arena.register(this);
  }

  /** Messages retained. */
  get size(): number {
    return this.count;
  }

  /** Sequence of the oldest retained message (0 when none is). */
  get first(): number {
    return this.count > 0 ? this.base : 0;
  }

  /** Appends the message of `sequence`, which follows the last one appended (or starts the log); at the limit the oldest goes. */
  append(draft: MessageDraft, id: string, sequence: number): void {
    if (this.count === 0) this.base = sequence;
    else if (sequence !== this.base + this.count) throw new Error(`memory log: sequence ${sequence} after ${this.base + this.count - 1}`);
    if (this.limit <= 0) return;
    if (this.count >= this.limit) this.dropOldest();
    else if (this.count === this.capacity) this.grow();
    const arena = this.arena;
    arena.reserve(worstCase(draft, id));
    const end = write(arena.target, arena.at, draft, id);
    const address = arena.commit(end, this.owner, sequence);
    const entry = 2 * ((this.start + this.count) % this.capacity);
    this.ring[entry] = address;
    this.ring[entry + 1] = draft.timeMs;
    this.count++;
  }

  addressOf(sequence: number): number | undefined {
    const i = sequence - this.base;
    return i >= 0 && i < this.count ? this.ring[this.entry(i)] : undefined;
  }

  moved(sequence: number, address: number): void {
    this.ring[this.entry(sequence - this.base)] = address;
  }

  /** Drops the oldest messages while they are older than `oldestMs`, stopping at the first that is not. */
  dropOlderThan(oldestMs: number): void {
    while (this.count > 0 && this.ring[2 * this.start + 1]! < oldestMs) this.dropOldest();
  }

  /** Id of the message of `sequence`, if retained. */
  idOf(sequence: number): string | undefined {
    const address = this.addressOf(sequence);
    if (address === undefined) return undefined;
    pos = bodyAt(address) + 8;
    return text(this.arena.buffer(address));
  }

  /** The retained message of `sequence` as a new object. */
  message(sequence: number, room: string, epoch: string): StoredMessage {
    const address = this.ring[this.entry(sequence - this.base)]!;
    return read(this.arena.buffer(address), bodyAt(address), room, epoch, BigInt(sequence));
  }

  /** Drops every message before `sequence`. */
  dropBefore(sequence: number): void {
    for (let n = Math.min(this.count, sequence - this.base); n > 0; n--) this.dropOldest();
  }

  /** Empties the log (its ring too: a cleared room may stay idle); the next append may start at any sequence. */
  clear(): void {
    this.dropBefore(this.base + this.count);
    this.ring = [];
    this.capacity = 0;
    this.start = 0;
    this.base = 1;
  }

  /** Empties the log and gives its place in the arena back (the room is gone). */
  dispose(): void {
    this.clear();
    this.arena.unregister(this.owner);
  }

  /** Index in the ring of the address of the i-th oldest message. */
  private entry(i: number): number {
    return 2 * ((this.start + i) % this.capacity);
  }

  private dropOldest(): void {
    this.arena.release(this.ring[2 * this.start]!);
    this.start = this.start + 1 === this.capacity ? 0 : this.start + 1;
    this.base++;
    this.count--;
  }

  /** A ring twice as large (at most the limit), the entries in order from its start. */
  private grow(): void {
    const capacity = Math.min(this.limit, Math.max(4, 2 * this.capacity));
    const ring = new Array<number>(2 * capacity).fill(0);
    for (let i = 0; i < this.count; i++) {
      const from = this.entry(i);
      ring[2 * i] = this.ring[from]!;
      ring[2 * i + 1] = this.ring[from + 1]!;
    }
    this.ring = ring;
    this.capacity = capacity;
    this.start = 0;
  }
}

/** Upper bound of a record's size (UTF-8 takes at most 3 bytes per UTF-16 unit; lengths at most 5). */
function worstCase(draft: MessageDraft, id: string): number {
  let size = 8 + 6 * 5 + 3 * (id.length + draft.sender.length + draft.clientMessageId.length + draft.content.length) + draft.payload.length;
  const attributes = draft.attributes;
  for (const key in attributes) size += 10 + 3 * (key.length + attributes[key]!.length);
  const dependencies = draft.dependencies;
  if (dependencies === encodedList) size += encodedBytes.length;
  // Indexed loops: the lists are frozen, and for-of over a frozen array allocates an iterator result per entry.
  else if (dependencies) for (let i = 0; i < dependencies.length; i++) size += 18 + 3 * (dependencies[i]!.room.length + dependencies[i]!.epoch.length);
  return size;
}

function write(out: Buffer, at: number, draft: MessageDraft, id: string): number {
  at = out.writeDoubleLE(draft.timeMs, at);
  at = putString(out, at, id);
  at = putString(out, at, draft.sender);
  at = putString(out, at, draft.clientMessageId);
  at = putString(out, at, draft.content);
  at = putVarint(out, at, draft.payload.length);
  out.set(draft.payload, at);
  at += draft.payload.length;
  const attributes = draft.attributes;
  let keys = 0;
  for (const _ in attributes) keys++;
  at = putVarint(out, at, keys);
  for (const key in attributes) {
    at = putString(out, at, key);
    at = putString(out, at, attributes[key]!);
  }
  const dependencies = draft.dependencies ?? NONE;
  if (dependencies === encodedList) {
    out.set(encodedBytes, at);
    return at + encodedBytes.length;
  }
  const start = at;
  at = putVarint(out, at, dependencies.length);
  for (let i = 0; i < dependencies.length; i++) {
    const d = dependencies[i]!;
    at = putString(out, at, d.room);
    at = putString(out, at, d.epoch);
    at = out.writeBigUInt64LE(BigInt.asUintN(64, d.sequence), at);
  }
  if (dependencies.length > 0 && isImmutable(dependencies)) {
    encodedList = dependencies;
    encodedBytes = Uint8Array.prototype.slice.call(out, start, at);
  }
  return at;
}

const NONE: readonly Dependency[] = [];

/**
 * The last immutable list of dependencies written, and its bytes (a copy):
 * a publisher's messages share one list while its context does not move
 * (src/server/wire-decoders.ts), so most records copy these bytes in
 * instead of writing eight rooms, epochs and sequences again.
 */
let encodedList: readonly Dependency[] | undefined;
let encodedBytes = new Uint8Array(0);

function read(bytes: Buffer, at: number, room: string, epoch: string, sequence: bigint): StoredMessage {
  const timeMs = bytes.readDoubleLE(at);
  pos = at + 8;
  const id = text(bytes);
  const sender = text(bytes);
  const clientMessageId = text(bytes);
  const content = text(bytes);
  const length = varint(bytes);
  const payload = new Uint8Array(length);
  payload.set(bytes.subarray(pos, pos + length));
  pos += length;
  const attributes: Record<string, string> = {};
  for (let n = varint(bytes); n > 0; n--) {
    const key = text(bytes);
    attributes[key] = text(bytes);
  }
  let dependencies: Dependency[] | undefined;
  for (let n = varint(bytes); n > 0; n--) {
    const dependency = { room: text(bytes), epoch: text(bytes), sequence: bytes.readBigUInt64LE(pos) };
    pos += 8;
    (dependencies ??= []).push(dependency);
  }
  return { id, room, epoch, sequence, sender, content, payload, attributes, timeMs, clientMessageId, dependencies };
}

/** A string as varint byte length and UTF-8; short ASCII (ids, senders) copied in JS, cheaper than a native call. */
function putString(out: Buffer, at: number, s: string): number {
  if (s.length < 0x80) {
    const end = putShortAscii(out, at, s);
    if (end >= 0) return end;
  }
  const length = Buffer.byteLength(s, "utf8");
  at = putVarint(out, at, length);
  return at + out.write(s, at, length, "utf8");
}

/**
 * Where read() and text() are in the record they decode: decoding is
 * synchronous from start to end, so one offset for all of it, not a cursor
 * object or an [value, offset] pair per field (a 100-message history page
 * took ~200 us to decode with those).
 */
let pos = 0;

/** A varint below 2^32 at `pos`. */
function varint(bytes: Buffer): number {
  let byte = bytes[pos++]!;
  if (byte < 0x80) return byte;
  let value = byte & 0x7f;
  let scale = 0x80;
  for (;;) {
    byte = bytes[pos++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return value;
    scale *= 0x80;
  }
}

/** A string at `pos`: varint byte length, UTF-8. utf8Slice is what toString("utf8", …) calls after checking its arguments. */
function text(bytes: Buffer): string {
  const length = varint(bytes);
  if (length === 0) return "";
  const from = pos;
  pos += length;
  return (bytes as Buffer & { utf8Slice(start: number, end: number): string }).utf8Slice(from, pos);
}
