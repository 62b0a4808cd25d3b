/**
 * The wire format by hand for the bench's lean client (lean-client.ts): a
 * protobuf reader that finds only what the bench checks, without closures or
 * allocations on the subscriber's path, and publish requests encoded byte for
 * byte as protobuf-es writes them.
 */

export interface LeanSubscriberEvents {
  /** A room's subscription started after `sequence`. */
  subscribed(room: string, sequence: bigint): void;
  /** A message: its sequence, and its payload (a view into the received buffer, valid during the call). */
  message(sequence: number, payload: Uint8Array): void;
  /** The stream ended (code 0: cleanly). */
  ended(code: number, message: string): void;
  /** Any other event, by its SubscribeEvent field number (1 session_started, 4 presence, 5 heartbeat, 9 presence_changes, …). */
  other?(kind: number): void;
}

// ---- protobuf walking ------------------------------------------------------

/** Where the last readVarint/readValue stopped: module state, so reading allocates nothing. */
let cursor = 0;

/** Reads a varint at `pos` and leaves `cursor` after it. Values beyond 2^53 are not needed here. */
function readVarint(buf: Uint8Array, pos: number): number {
  let value = 0;
  let shift = 1;
  for (;;) {
    const byte = buf[pos++]!;
    value += (byte & 0x7f) * shift;
    if (byte < 0x80) {
      cursor = pos;
      return value;
    }
    shift *= 128;
  }
}

/**
 * Reads the value of a field whose tag ended at `pos`, leaving `cursor` after
 * it: returns a varint's value or a length-delimited field's length (its bytes
 * start at `cursor - length`), and 0 for fixed-width fields.
 */
function readValue(buf: Uint8Array, wireType: number, pos: number): number {
  switch (wireType) {
    case 0:
      return readVarint(buf, pos);
    case 2: {
      const length = readVarint(buf, pos);
      cursor += length;
      return length;
    }
    case 1:
      cursor = pos + 8;
      return 0;
    case 5:
      cursor = pos + 4;
      return 0;
    default:
      throw new Error(`unsupported wire type ${wireType}`);
  }
}

/** Calls `visit(field, start, end, value)` for each field of the message in buf[start, end) (value: a varint's, or a length). */
export function walk(buf: Uint8Array, start: number, end: number, visit: (field: number, start: number, end: number, value: number) => void): void {
  let pos = start;
  while (pos < end) {
    const tag = readVarint(buf, pos);
    const value = readValue(buf, tag & 7, cursor);
    pos = cursor;
    if ((tag & 7) === 2) visit(tag >>> 3, pos - value, pos, value);
    else visit(tag >>> 3, pos, pos, value);
  }
}

/**
 * The subscriber's hot path: one SubscribeResponse (repeated SubscribeEvent
 * events = 1), read without closures or allocations besides the payload
 * view. A delivery's Message gives its sequence (4, varint) and payload (7);
 * every other field (id, room, epoch, sender, time, dependencies, …) is
 * skipped by its length.
 */
export function readSubscribeResponse(buf: Buffer, start: number, end: number, events: LeanSubscriberEvents): void {
  let pos = start;
  while (pos < end) {
    const tag = readVarint(buf, pos);
    const length = readValue(buf, tag & 7, cursor);
    pos = cursor;
    if (tag === ((1 << 3) | 2)) readEvent(buf, pos - length, pos, events);
  }
}

function readEvent(buf: Buffer, start: number, end: number, events: LeanSubscriberEvents): void {
  let pos = start;
  while (pos < end) {
    const tag = readVarint(buf, pos);
    const length = readValue(buf, tag & 7, cursor);
    pos = cursor;
    const kind = tag >>> 3;
    if (kind === 3 && (tag & 7) === 2) readMessage(buf, pos - length, pos, events);
    else if (kind === 2 && (tag & 7) === 2) readSubscribed(buf, pos - length, pos, events);
    else events.other?.(kind);
  }
}

function readMessage(buf: Buffer, start: number, end: number, events: LeanSubscriberEvents): void {
  let sequence = 0;
  let payloadStart = 0;
  let payloadEnd = 0;
  let pos = start;
  while (pos < end) {
    const tag = readVarint(buf, pos);
    const value = readValue(buf, tag & 7, cursor);
    pos = cursor;
    if (tag === ((4 << 3) | 0)) sequence = value;
    else if (tag === ((7 << 3) | 2)) {
      payloadStart = pos - value;
      payloadEnd = pos;
    }
  }
  events.message(sequence, buf.subarray(payloadStart, payloadEnd));
}

/** Subscribed: room = 1, position = 2 (StreamPosition: sequence = 2). */
function readSubscribed(buf: Buffer, start: number, end: number, events: LeanSubscriberEvents): void {
  let room = "";
  let sequence = 0;
  walk(buf, start, end, (f, fs, fe) => {
    if (f === 1) room = buf.toString("utf8", fs, fe);
    else if (f === 2) walk(buf, fs, fe, (pf, _s, _e, value) => void (pf === 2 && (sequence = value)));
  });
  events.subscribed(room, BigInt(sequence));
}

// ---- protobuf writing --------------------------------------------------------
//
// Publishing is the load generator's hot path, so its requests are encoded
// by hand too (protobuf-es's reflective create/toBinary cost the bench
// process more per message than the broker spent on it): PublishRequest is
// room = 1 (string), payload = 3 (bytes), client_message_id = 5 (string);
// PublishStreamRequest is repeated PublishRequest messages = 1.

const varintSize = (value: number) => (value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5);

function writeVarint(buf: Buffer, pos: number, value: number): number {
  while (value >= 0x80) {
    buf[pos++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[pos++] = value;
  return pos;
}

export interface PublishMessage {
  room: string;
  payload: Uint8Array;
  clientMessageId: string;
  /** Causal dependencies, already encoded as PublishRequest fields 6 (tags included): see bench/lib/causal.ts. */
  dependencies?: Uint8Array;
}

/** Size of a PublishRequest's body, and of its two strings in UTF-8. */
function publishRequestSize(m: PublishMessage): [number, number, number] {
  const room = Buffer.byteLength(m.room);
  const id = Buffer.byteLength(m.clientMessageId);
  let size = 1 + varintSize(room) + room;
  if (m.payload.length) size += 1 + varintSize(m.payload.length) + m.payload.length;
  if (id) size += 1 + varintSize(id) + id;
  if (m.dependencies) size += m.dependencies.length;
  return [size, room, id];
}

function writePublishRequest(buf: Buffer, pos: number, m: PublishMessage, room: number, id: number): number {
  buf[pos++] = 0x0a;
  pos = writeVarint(buf, pos, room);
  pos += buf.write(m.room, pos);
  if (m.payload.length) {
    buf[pos++] = 0x1a;
    pos = writeVarint(buf, pos, m.payload.length);
    buf.set(m.payload, pos);
    pos += m.payload.length;
  }
  if (id) {
    buf[pos++] = 0x2a;
    pos = writeVarint(buf, pos, id);
    pos += buf.write(m.clientMessageId, pos);
  }
  if (m.dependencies) {
    buf.set(m.dependencies, pos);
    pos += m.dependencies.length;
  }
  return pos;
}

/** One gRPC-framed PublishStreamRequest carrying `messages`. */
export function framedPublishStreamRequest(messages: PublishMessage[]): Buffer {
  const sizes = messages.map(publishRequestSize);
  const body = sizes.reduce((sum, [size]) => sum + 1 + varintSize(size) + size, 0);
  const buf = Buffer.allocUnsafe(5 + body);
  buf[0] = 0;
  buf.writeUInt32BE(body, 1);
  let pos = 5;
  for (let i = 0; i < messages.length; i++) {
    const [size, room, id] = sizes[i]!;
    buf[pos++] = 0x0a;
    pos = writeVarint(buf, pos, size);
    pos = writePublishRequest(buf, pos, messages[i]!, room, id);
  }
  return buf;
}

/** One gRPC-framed PublishRequest. */
export function framedPublishRequest(message: PublishMessage): Buffer {
  const [size, room, id] = publishRequestSize(message);
  const buf = Buffer.allocUnsafe(5 + size);
  buf[0] = 0;
  buf.writeUInt32BE(size, 1);
  writePublishRequest(buf, 5, message, room, id);
  return buf;
}

// ---- the subscriber's stream reader -------------------------------------------

/** The body length of the entry entrySize() last sized. */
let bodyLength = 0;

/** Size of the entry (tag, length, bytes) starting at `at`, or 0 when its tag and length are not all before `end`. */
function entrySize(buf: Uint8Array, at: number, end: number): number {
  let i = at;
  while (i < end && buf[i]! >= 0x80) i++;
  if (i >= end) return 0;
  i++;
  let length = 0;
  let shift = 1;
  for (;;) {
    if (i >= end) return 0;
    const byte = buf[i++]!;
    length += (byte & 0x7f) * shift;
    if (byte < 0x80) break;
    shift *= 128;
  }
  bodyLength = length;
  return i - at + length;
}

/**
 * Reads the whole `events` entries of buf[start, end) and returns where the
 * first cut one starts (end when none is).
 */
function readEntries(buf: Buffer, start: number, end: number, events: LeanSubscriberEvents): number {
  let pos = start;
  while (pos < end) {
    const size = entrySize(buf, pos, end);
    if (size === 0 || pos + size > end) return pos;
    // The event's bytes are the entry's last bodyLength bytes (field 1: a one-byte tag).
    if (buf[pos] === ((1 << 3) | 2)) readEvent(buf, pos + size - bodyLength, pos + size, events);
    pos += size;
  }
  return pos;
}

/**
 * Reads a Subscribe response stream as it arrives: gRPC messages, each a
 * SubscribeResponse, i.e. a run of `events` entries (field 1). A message
 * inside one chunk is read where it lies, and so is every whole entry of a
 * message spread over chunks; only an entry (or a 5-byte header) cut by a
 * chunk boundary is copied. (Collecting each gRPC message whole before
 * reading it copied every byte once: a broker's flush can be one message of
 * hundreds of KiB, and that copy was a large share of the load generator's
 * time, growing with message size.)
 */
export class SubscribeStreamReader {
  /** Bytes of the current gRPC message's body still to come; -1: a 5-byte header is next. */
  private left = -1;
  /** A header or entry cut by a chunk boundary, its bytes so far. */
  private part = Buffer.allocUnsafe(4096);
  private partLen = 0;

  constructor(private readonly events: LeanSubscriberEvents) {}

  push(chunk: Buffer): void {
    let pos = 0;
    if (this.partLen > 0) {
      pos = this.complete(chunk);
      if (pos < 0) return;
    }
    const end = chunk.length;
    while (pos < end) {
      if (this.left < 0) {
        if (end - pos < 5) return this.keep(chunk, pos, end);
        const length = chunk.readUInt32BE(pos + 1);
        pos += 5;
        if (length === 0) continue;
        if (end - pos >= length) {
          readSubscribeResponse(chunk, pos, pos + length, this.events);
          pos += length;
          continue;
        }
        this.left = length;
      }
      const limit = Math.min(end, pos + this.left);
      const stop = readEntries(chunk, pos, limit, this.events);
      this.left -= stop - pos;
      pos = stop;
      if (this.left === 0) this.left = -1;
      // What remains of the chunk is the start of a cut entry (limit is the chunk's end then).
      else if (pos < end) return this.keep(chunk, pos, end);
    }
  }

  /** Starts a cut header or entry with buf[from, to). */
  private keep(buf: Buffer, from: number, to: number): void {
    this.partLen = 0;
    this.append(buf, from, to);
  }

  private append(buf: Buffer, from: number, to: number): void {
    const n = to - from;
    if (this.partLen + n > this.part.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.part.length * 2, this.partLen + n));
      this.part.copy(bigger, 0, 0, this.partLen);
      this.part = bigger;
    }
    buf.copy(this.part, this.partLen, from, to);
    this.partLen += n;
  }

  /** Completes the cut item from the new chunk; returns where the chunk's unread bytes start, or -1 if it is still incomplete. */
  private complete(chunk: Buffer): number {
    const header = this.left < 0;
    const sizeOf = () => (header ? (this.partLen >= 5 ? 5 : 0) : entrySize(this.part, 0, this.partLen));
    let pos = 0;
    // The item's own header comes a byte at a time (a few bytes at most), then the rest at once.
    let size = sizeOf();
    while (size === 0) {
      if (pos >= chunk.length) return -1;
      this.append(chunk, pos, pos + 1);
      pos++;
      size = sizeOf();
    }
    const missing = size - this.partLen;
    if (missing > chunk.length - pos) {
      this.append(chunk, pos, chunk.length);
      return -1;
    }
    this.append(chunk, pos, pos + missing);
    pos += missing;
    this.partLen = 0;
    if (header) {
      const length = this.part.readUInt32BE(1);
      this.left = length === 0 ? -1 : length;
    } else {
      readSubscribeResponse(this.part, 0, size, this.events);
      this.left -= size;
      if (this.left === 0) this.left = -1;
    }
    return pos;
  }
}
