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
import { benchCertificate } from "./lib/tls.js";
import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { RoomSubscriptionSchema, SubscribeRequestSchema } from "../gen/es/seqcast/v1/pubsub_pb.js";
import {
  framedPublishRequest,
  framedPublishStreamRequest,
  SubscribeStreamReader,
  walk,
  type LeanSubscriberEvents,
  type PublishMessage,
} from "./lib/lean-wire.js";

export type { LeanSubscriberEvents, PublishMessage } from "./lib/lean-wire.js";

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

export interface LeanConnection {
  session: http2.ClientHttp2Session;
  close(): void;
}

export function connect(url: string): LeanConnection {
  // https: the run's own certificate (the "seqcast-tls" row), verified like any client would.
  const session = http2.connect(url, url.startsWith("https:") ? { ca: benchCertificate().pem } : undefined);
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
  stream.end(frame(toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { rooms, device, compactDependencies: true }))));
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
  const reader = new SubscribeStreamReader(events);
  stream.on("data", (chunk: Buffer) => reader.push(chunk));
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
