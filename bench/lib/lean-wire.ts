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
