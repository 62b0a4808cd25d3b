/**
 * A minimal seqcast client for the load generator: HTTP/2 and gRPC framing
 * by hand (HTTP/2 from bench/lib/h2-framer.ts on a socket of its own, as
 * nats.js and ioredis hold theirs), a protobuf field walker that reads only what the
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
import net from "node:net";
import tls from "node:tls";
import { literalBlock } from "../src/server/h2/hpack.js";
import { FramerConnection, type FramerStream } from "./lib/h2-framer.js";
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
function statusOf(headers: Record<string, string>): { code: number; message: string } {
  return { code: Number(headers["grpc-status"] ?? 2), message: decodeURIComponent(headers["grpc-message"] ?? "") };
}

// ---- connections -------------------------------------------------------------

export interface LeanConnection {
  h2: FramerConnection;
  /** The request header block of a gRPC call to `path` with `token` (cached: every call of the bench sends the same few). */
  requestBlock(path: string, token: string): Buffer;
  close(): void;
}

export function connect(url: string): LeanConnection {
  const { protocol, hostname, port } = new URL(url);
  // https: the run's own certificate (the "seqcast-tls" row), verified like any client would, HTTP/2 by ALPN.
  const socket =
    protocol === "https:"
      ? tls.connect({ host: hostname, port: Number(port), ca: benchCertificate().pem, ALPNProtocols: ["h2"] })
      : net.connect({ host: hostname, port: Number(port) });
  socket.on("error", () => socket.destroy());
  const h2 = new FramerConnection(socket, () => {}, "client");
  const blocks = new Map<string, Buffer>();
  const authority = `${hostname}:${port}`;
  const scheme = protocol.slice(0, -1);
  return {
    h2,
    requestBlock(path, token) {
      const key = `${path}\n${token}`;
      let block = blocks.get(key);
      if (!block) {
        block = literalBlock([
          [":method", "POST"],
          [":scheme", scheme],
          [":authority", authority],
          [":path", path],
          ["content-type", "application/grpc"],
          ["te", "trailers"],
          ["authorization", `Bearer ${token}`],
        ]);
        blocks.set(key, block);
      }
      return block;
    },
    close: () => h2.destroy(),
  };
}

/**
 * A gRPC call's stream on `connection`: `ended` with its status once the
 * trailers (or Trailers-Only headers), a reset or the connection's end come.
 */
function call(connection: LeanConnection, path: string, token: string, onStatus: (code: number, message: string) => void): FramerStream {
  const stream = connection.h2.request(connection.requestBlock(path, token));
  let ended = false;
  const end = (code: number, message: string) => {
    if (ended) return;
    ended = true;
    onStatus(code, message);
  };
  stream.onHeaders = (headers, endStream) => {
    if (headers["grpc-status"] !== undefined) end(statusOf(headers).code, statusOf(headers).message);
    else if (endStream) end(2, "stream ended without a grpc-status");
  };
  stream.onClose = () => end(14, stream.resetCode === undefined ? "stream closed without status" : `stream reset (HTTP/2 code ${stream.resetCode})`);
  return stream;
}

// ---- subscriber ------------------------------------------------------------

/** Opens a Subscribe stream on `connection` and walks every event for messages. */
export function subscribe(
  connection: LeanConnection,
  token: string,
  rooms: MessageInitShape<typeof RoomSubscriptionSchema>[],
  events: LeanSubscriberEvents,
  device = "bench",
): { close(): void } {
  const stream = call(connection, "/seqcast.v1.PubSubService/Subscribe", token, (code, message) => events.ended(code, message));
  const reader = new SubscribeStreamReader(events);
  stream.onData = (chunk) => reader.push(chunk);
  stream.write(frame(toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { rooms, device, compactDependencies: true }))));
  stream.endRequest();
  return { close: () => connection.h2.reset(stream) };
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
  private readonly stream: FramerStream;
  private readonly ended: Promise<{ code: number; message: string }>;

  constructor(connection: LeanConnection, token: string, onAck: (ack: PublishAck) => void) {
    let resolveEnded!: (status: { code: number; message: string }) => void;
    this.ended = new Promise((resolve) => (resolveEnded = resolve));
    this.stream = call(connection, "/seqcast.v1.PubSubService/PublishStream", token, (code, message) => resolveEnded({ code, message }));
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
    this.stream.onData = (chunk) => deframer.push(chunk);
  }

  /** Publishes messages (one PublishStreamRequest); false when the stream's buffer is full. */
  publish(messages: PublishMessage[]): boolean {
    return this.stream.write(framedPublishStreamRequest(messages));
  }

  whenWritable(): Promise<void> {
    return new Promise((resolve) => (this.stream.onDrain = resolve));
  }

  /** Half-closes and resolves with the final status. */
  end(): Promise<{ code: number; message: string }> {
    this.stream.endRequest();
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
    let ack: PublishAck = { sequence: 0, code: 2, error: "no response" };
    const stream = call(connection, "/seqcast.v1.PubSubService/Publish", token, (code, message) =>
      resolve(code === 0 ? ack : { sequence: 0, code, error: message }),
    );
    const deframer = new Deframer((buf, start, end) => {
      // PublishResponse: position = 2 (StreamPosition: sequence = 2).
      walk(buf, start, end, (f, s, e) => {
        if (f === 2) walk(buf, s, e, (pf, _s, _e, value) => void (pf === 2 && (ack = { sequence: value, code: 0 })));
      });
    });
    stream.onData = (chunk) => deframer.push(chunk);
    stream.write(framedPublishRequest({ room, payload, clientMessageId, dependencies }));
    stream.endRequest();
  });
}
