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
  /** Record addresses in the arena; entries before `head` are released. Numbers only (a double array the collector does not trace). */
  private addresses: number[] = [];
  private head = 0;
  /** Sequence of entry 0. */
  private base = 1;
  /** Broker time of the oldest retained message (read once per trim, not per publish: a cold record at 10,000 rooms). */
  private firstTime = NaN;
  private readonly owner: number;

  constructor(private readonly arena: RecordArena) {
    this.owner = arena.register(this);
  }

  /** Messages retained. */
  get size(): number {
    return this.addresses.length - this.head;
  }

  /** Sequence of the oldest retained message (0 when none is). */
  get first(): number {
    return this.head < this.addresses.length ? this.base + this.head : 0;
  }

  /** Appends the message of `sequence`, which follows the last one appended (or starts the log). */
  append(draft: MessageDraft, id: string, sequence: number): void {
    if (this.size === 0) {
      this.restart(sequence);
      this.firstTime = draft.timeMs;
    }
    else if (sequence !== this.base + this.addresses.length) throw new Error(`memory log: sequence ${sequence} after ${this.base + this.addresses.length - 1}`);
    const arena = this.arena;
    arena.reserve(worstCase(draft, id));
    const end = write(arena.target, arena.at, draft, id);
    this.addresses.push(arena.commit(end, this.owner, sequence));
  }

  addressOf(sequence: number): number | undefined {
    const i = sequence - this.base;
    return i >= this.head && i < this.addresses.length ? this.addresses[i] : undefined;
  }

  moved(sequence: number, address: number): void {
    this.addresses[sequence - this.base] = address;
  }

  /** Drops the oldest messages while they are older than `oldestMs`, stopping at the first that is not. */
  dropOlderThan(oldestMs: number): void {
    while (this.size > 0 && this.firstTime < oldestMs) this.dropBefore(this.first + 1);
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
    const address = this.addresses[sequence - this.base]!;
    return read(this.arena.buffer(address), bodyAt(address), room, epoch, BigInt(sequence));
  }

  /** Drops every message before `sequence`. */
  dropBefore(sequence: number): void {
    const addresses = this.addresses;
    const head = Math.min(addresses.length, Math.max(this.head, sequence - this.base));
    if (head === this.head) return;
    for (let i = this.head; i < head; i++) this.arena.release(addresses[i]!);
    this.head = head;
    if (head === addresses.length) return this.restart(this.base + head);
    const address = addresses[head]!;
    this.firstTime = this.arena.buffer(address).readDoubleLE(bodyAt(address));
    // Let go of the released entries once they dominate, so trimming stays amortised O(1).
    if (head > 64 && head * 2 > addresses.length) {
      this.addresses = addresses.slice(head);
      this.base += head;
      this.head = 0;
    }
  }

  /** Empties the log; the next append may start at any sequence. */
  clear(): void {
    this.dropBefore(this.base + this.addresses.length);
    this.restart(1);
  }

  /** Empties the log and gives its place in the arena back (the room is gone). */
  dispose(): void {
    this.clear();
    this.arena.unregister(this.owner);
  }

  private restart(sequence: number): void {
    if (this.addresses.length > 0) this.addresses = [];
    this.firstTime = NaN;
    this.head = 0;
    this.base = sequence;
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
