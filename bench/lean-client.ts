/**
 * A minimal seqcast client for the load generator: node:http2 and gRPC
 * framing by hand, a protobuf field walker that reads only what the
 * benchmark checks (a message's sequence and payload, a result's position),
 * and publish requests encoded by hand (byte for byte what protobuf-es
 * writes).
 *
 * Why: the benchmark measures brokers. nats.js and ioredis hand the bench
 * the payload bytes of each delivery without decoding anything else; the
 * seqcast SDK (connect-node + protobuf-es) builds a full Message object per
 * delivery, which made the single load-generator process the bottleneck
 * (100% busy while the broker idled at 25%). This client does per delivery
 * what the peers' clients do: find the payload. It speaks the same wire
 * protocol as every other client (tested against the real broker by the
 * bench's correctness checks), it just skips what the bench never reads.
 */
import http2 from "node:http2";
import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { RoomSubscriptionSchema, SubscribeRequestSchema } from "../gen/es/seqcast/v1/pubsub_pb.js";

// ---- protobuf walking ------------------------------------------------------

/** Where the last readVarint/skipField stopped: module state, so reading allocates nothing. */
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
function walk(buf: Uint8Array, start: number, end: number, visit: (field: number, start: number, end: number, value: number) => void): void {
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
function readSubscribeResponse(buf: Buffer, start: number, end: number, events: LeanSubscriberEvents): void {
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

// ---- gRPC framing ------------------------------------------------------------

function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/**
 * Splits a response body into gRPC messages as chunks arrive. A message
 * spread over many chunks (a broker's batch of events can be hundreds of
 * KiB) is copied once, when its last chunk arrives: concatenating at every
 * chunk made the copying quadratic in the batch size, and the load
 * generator the bottleneck as soon as deliveries grew (seen with causal
 * metadata on, whose messages are larger).
 */
class Deframer {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Size of the frame being collected (header included), once its header is complete; 0 before. */
  private frame = 0;
  constructor(private readonly onMessage: (buf: Buffer, start: number, end: number) => void) {}
  push(chunk: Buffer): void {
    if (this.chunks.length === 0) return this.drain(chunk);
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (this.frame === 0) {
      if (this.buffered < 5) return;
      const joined = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [joined];
      this.frame = 5 + joined.readUInt32BE(1);
    }
    if (this.buffered < this.frame) return;
    const buf = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    this.frame = 0;
    this.drain(buf);
  }
  private drain(buf: Buffer): void {
    let pos = 0;
    while (buf.length - pos >= 5) {
      const length = buf.readUInt32BE(pos + 1);
      if (buf.length - pos < 5 + length) break;
      this.onMessage(buf, pos + 5, pos + 5 + length);
      pos += 5 + length;
    }
    if (pos === buf.length) return;
    // Keep the rest detached from `buf`, which may be large.
    const rest = Buffer.from(buf.subarray(pos));
    this.chunks = [rest];
    this.buffered = rest.length;
    this.frame = rest.length >= 5 ? 5 + rest.readUInt32BE(1) : 0;
  }
}

/** Status of a finished call from its trailers (or Trailers-Only headers). */
function statusOf(headers: http2.IncomingHttpHeaders): { code: number; message: string } {
  return { code: Number(headers["grpc-status"] ?? 2), message: decodeURIComponent(String(headers["grpc-message"] ?? "")) };
}

// ---- subscriber ------------------------------------------------------------

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

export interface LeanConnection {
  session: http2.ClientHttp2Session;
  close(): void;
}

export function connect(url: string): LeanConnection {
  const session = http2.connect(url);
  session.on("error", () => {});
  return { session, close: () => session.destroy() };
}

/** Opens a Subscribe stream on `connection` and walks every event for messages. */
export function subscribe(
  connection: LeanConnection,
  token: string,
  rooms: MessageInitShape<typeof RoomSubscriptionSchema>[],
  events: LeanSubscriberEvents,
  device = "bench",
): http2.ClientHttp2Stream {
  const stream = connection.session.request({
    ":method": "POST",
    ":path": "/seqcast.v1.PubSubService/Subscribe",
    "content-type": "application/grpc",
    te: "trailers",
    authorization: `Bearer ${token}`,
  });
  stream.end(frame(toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { rooms, device }))));
  let ended = false;
  const end = (code: number, message: string) => {
    if (ended) return;
    ended = true;
    events.ended(code, message);
  };
  stream.on("response", (headers) => {
    if (headers["grpc-status"] !== undefined) end(statusOf(headers).code, statusOf(headers).message);
  });
  stream.on("trailers", (headers) => end(statusOf(headers).code, statusOf(headers).message));
  stream.on("error", (error) => end(14, error.message));
  stream.on("close", () => end(14, "stream closed without status"));
  const deframer = new Deframer((buf, start, end) => readSubscribeResponse(buf, start, end, events));
  stream.on("data", (chunk: Buffer) => deframer.push(chunk));
  return stream;
}

// ---- publishers --------------------------------------------------------------

export interface PublishAck {
  /** The position's sequence, or 0 for an error. */
  sequence: number;
  /** gRPC code of a failed message (0: stored). */
  code: number;
  error?: string;
}

/**
 * A PublishStream: `publish()` sends one message (one stream message each,
 * or several per write with `publishMany`), acks arrive in order through
 * `onAck`.
 */
export class LeanPublishStream {
  private readonly stream: http2.ClientHttp2Stream;
  private readonly ended: Promise<{ code: number; message: string }>;

  constructor(connection: LeanConnection, token: string, onAck: (ack: PublishAck) => void) {
    this.stream = connection.session.request({
      ":method": "POST",
      ":path": "/seqcast.v1.PubSubService/PublishStream",
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${token}`,
    });
    this.ended = new Promise((resolve) => {
      this.stream.on("response", (headers) => {
        if (headers["grpc-status"] !== undefined) resolve(statusOf(headers));
      });
      this.stream.on("trailers", (headers) => resolve(statusOf(headers)));
      this.stream.on("error", (error) => resolve({ code: 14, message: error.message }));
      this.stream.on("close", () => resolve({ code: 14, message: "closed without status" }));
    });
    const deframer = new Deframer((buf, start, end) => {
      // PublishStreamResponse: repeated PublishResult results = 1; result: published = 2 | error = 3.
      walk(buf, start, end, (field, s, e) => {
        if (field !== 1) return;
        let ack: PublishAck = { sequence: 0, code: 2 };
        walk(buf, s, e, (f, fs, fe) => {
          if (f === 2)
            walk(buf, fs, fe, (pf, ps, pe) => {
              if (pf === 2) walk(buf, ps, pe, (qf, _s, _e, value) => void (qf === 2 && (ack = { sequence: value, code: 0 })));
            });
          else if (f === 3) {
            let code = 2;
            let message = "";
            walk(buf, fs, fe, (ef, es, ee, value) => {
              if (ef === 1) code = value;
              else if (ef === 2) message = buf.toString("utf8", es, ee);
            });
            ack = { sequence: 0, code, error: message };
          }
        });
        onAck(ack);
      });
    });
    this.stream.on("data", (chunk: Buffer) => deframer.push(chunk));
  }

  /** Publishes messages (one PublishStreamRequest); false when the stream's buffer is full. */
  publish(messages: PublishMessage[]): boolean {
    return this.stream.write(framedPublishStreamRequest(messages));
  }

  whenWritable(): Promise<void> {
    return new Promise((resolve) => this.stream.once("drain", resolve));
  }

  /** Half-closes and resolves with the final status. */
  end(): Promise<{ code: number; message: string }> {
    this.stream.end();
    return this.ended;
  }
}

/** One unary Publish on `connection`; resolves with its ack. */
export function publishUnary(
  connection: LeanConnection,
  token: string,
  room: string,
  payload: Uint8Array,
  clientMessageId = "",
  dependencies?: Uint8Array,
): Promise<PublishAck> {
  return new Promise((resolve) => {
    const stream = connection.session.request({
      ":method": "POST",
      ":path": "/seqcast.v1.PubSubService/Publish",
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${token}`,
    });
    let ack: PublishAck = { sequence: 0, code: 2, error: "no response" };
    const deframer = new Deframer((buf, start, end) => {
      // PublishResponse: position = 2 (StreamPosition: sequence = 2).
      walk(buf, start, end, (f, s, e) => {
        if (f === 2) walk(buf, s, e, (pf, _s, _e, value) => void (pf === 2 && (ack = { sequence: value, code: 0 })));
      });
    });
    const finish = (headers: http2.IncomingHttpHeaders) => {
      const status = statusOf(headers);
      resolve(status.code === 0 ? ack : { sequence: 0, code: status.code, error: status.message });
    };
    stream.on("response", (headers) => {
      if (headers["grpc-status"] !== undefined) finish(headers);
    });
    stream.on("trailers", finish);
    stream.on("error", (error) => resolve({ sequence: 0, code: 14, error: error.message }));
    stream.on("data", (chunk: Buffer) => deframer.push(chunk));
    stream.end(framedPublishRequest({ room, payload, clientMessageId, dependencies }));
  });
}
