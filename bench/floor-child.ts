/**
 * Node's floor for the fan-out and ingest scenarios: a bare gRPC-framed
 * fan-out on node:http2, in a process of its own like the broker. It speaks
 * just enough of seqcast's protocol for bench/lean-client.ts (Subscribe
 * answers with a `subscribed` event; PublishStream messages and unary
 * Publish calls are numbered, each written as one framed SubscribeResponse
 * to every open Subscribe stream, and acknowledged with its number) and does
 * nothing else: no authentication, rooms, history, presence, queues or
 * batching. What seqcast's broker costs
 * above this is what its features and its code cost; below it is not possible
 * on node:http2.
 *
 * FLOOR_HTTP2=framer serves the same on bench/lib/h2-framer.ts, an HTTP/2
 * connection written by hand on the socket, instead of node:http2: the
 * distance between the two is what node:http2's per-stream objects cost.
 *
 * Prints `{"port":…,"pid":…}`; exits when stdin closes or on SIGTERM;
 * answers "elu" on stdin like bench/broker-child.ts.
 */
import http2 from "node:http2";
import net from "node:net";
import { performance } from "node:perf_hooks";
import { FramerConnection, responseBlock, trailersBlock, type FramerStream } from "./lib/h2-framer.js";
import { literalBlock } from "../src/server/h2/hpack.js";

/** What the floor needs of a stream, from node:http2 or from the hand-written framer. */
interface FloorStream {
  readonly path: string;
  /** Response headers; `trailersLater`: the stream will end with trailers (grpc-status 0). */
  respond(trailersLater: boolean): void;
  write(bytes: Buffer): void;
  /** The last message, then the trailers. */
  end(last?: Buffer): void;
  /** A trailers-only response: UNIMPLEMENTED. */
  unimplemented(): void;
  onData(listener: (chunk: Buffer) => void): void;
  onEnd(listener: () => void): void;
  onClose(listener: () => void): void;
}

/** The open Subscribe streams. */
const streams = new Set<FloorStream>();
let sequence = 0;

function varint(value: number): number[] {
  const out: number[] = [];
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  out.push(value);
  return out;
}

/** A length-delimited field. */
function field(number: number, bytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([...varint((number << 3) | 2), ...varint(bytes.length)]), bytes]);
}

function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

/** Reads a varint at `pos`: [value, next]. */
function readVarint(buf: Buffer, pos: number): [number, number] {
  let value = 0;
  let shift = 1;
  for (;;) {
    const byte = buf[pos++]!;
    value += (byte & 0x7f) * shift;
    if (byte < 0x80) return [value, pos];
    shift *= 128;
  }
}

/** The payloads (PublishRequest field 3) of a PublishStreamRequest's messages (field 1). */
function payloads(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < buf.length) {
    let tag: number;
    let length: number;
    [tag, pos] = readVarint(buf, pos);
    [length, pos] = readVarint(buf, pos);
    if (tag >>> 3 === 1 && (tag & 7) === 2) out.push(payloadOf(buf.subarray(pos, pos + length)));
    pos += length;
  }
  return out;
}

/** Numbers a published payload and writes it to every Subscribe stream; returns its sequence. */
function fanOut(payload: Buffer): number {
  sequence++;
  // SubscribeResponse{events: [SubscribeEvent{message: Message{sequence: 4, payload: 7}}]}, encoded once, written to every stream.
  const message = Buffer.concat([Buffer.from([0x20, ...varint(sequence)]), field(7, payload)]);
  const bytes = frame(field(1, field(3, message)));
  for (const subscriber of streams) subscriber.write(bytes);
  return sequence;
}

/** The payload (field 3) of a PublishRequest. */
function payloadOf(request: Buffer): Buffer {
  let p = 0;
  let payload: Buffer = Buffer.alloc(0);
  while (p < request.length) {
    let t: number;
    [t, p] = readVarint(request, p);
    if ((t & 7) === 0) [, p] = readVarint(request, p);
    else {
      let l: number;
      [l, p] = readVarint(request, p);
      if (t >>> 3 === 3) payload = request.subarray(p, p + l);
      p += l;
    }
  }
  return payload;
}

/** Splits a request body into gRPC messages. */
function deframer(onMessage: (message: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let pos = 0;
    while (pending.length - pos >= 5) {
      const length = pending.readUInt32BE(pos + 1);
      if (pending.length - pos < 5 + length) break;
      onMessage(pending.subarray(pos + 5, pos + 5 + length));
      pos += 5 + length;
    }
    pending = pending.subarray(pos);
  };
}

function handle(stream: FloorStream): void {
  if (stream.path === "/seqcast.v1.PubSubService/Subscribe") {
    stream.respond(false);
    // SubscribeResponse{events: [SubscribeEvent{subscribed: Subscribed{room: "floor", position: {sequence}}}]}
    const position = Buffer.from([0x10, ...varint(sequence)]);
    const subscribed = Buffer.concat([field(1, Buffer.from("floor")), field(2, position)]);
    stream.write(frame(field(1, field(2, subscribed))));
    streams.add(stream);
    stream.onClose(() => streams.delete(stream));
  } else if (stream.path === "/seqcast.v1.PubSubService/PublishStream") {
    stream.respond(true);
    stream.onData(
      deframer((request) => {
        const results: Buffer[] = [];
        for (const payload of payloads(request)) {
          const n = fanOut(payload);
          // PublishResult{published: PublishResponse{position: StreamPosition{sequence}}}
          results.push(field(1, field(2, field(2, Buffer.from([0x10, ...varint(n)])))));
        }
        stream.write(frame(Buffer.concat(results)));
      }),
    );
    stream.onEnd(() => stream.end());
  } else if (stream.path === "/seqcast.v1.PubSubService/Publish") {
    // Unary: the one request, then response headers, the PublishResponse and trailers.
    let request: Buffer | undefined;
    stream.onData(deframer((message) => (request = message)));
    stream.onEnd(() => {
      const n = fanOut(payloadOf(request ?? Buffer.alloc(0)));
      stream.respond(true);
      // PublishResponse{position: StreamPosition{sequence}}
      stream.end(frame(field(2, Buffer.from([0x10, ...varint(n)]))));
    });
  } else {
    stream.unimplemented();
  }
}

const RESPONSE = { ":status": 200, "content-type": "application/grpc" };

// The adapters are classes, not object literals of closures: tsx (esbuild's
// keepNames) wraps every named closure in a call that defines its name, a
// cost per stream that showed as ~18% of the framer floor's profile.
class NodeFloorStream implements FloorStream {
  readonly path: string;
  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
  ) {
    this.path = headers[":path"] ?? "";
    stream.on("error", () => {});
  }
  respond(trailersLater: boolean): void {
    this.stream.respond(RESPONSE, { waitForTrailers: trailersLater });
    if (trailersLater) this.stream.on("wantTrailers", () => this.stream.sendTrailers({ "grpc-status": "0" }));
  }
  write(bytes: Buffer): void {
    this.stream.write(bytes);
  }
  end(last?: Buffer): void {
    if (last) this.stream.end(last);
    else this.stream.end();
  }
  unimplemented(): void {
    this.stream.respond({ ...RESPONSE, "grpc-status": "12" }, { endStream: true });
  }
  onData(listener: (chunk: Buffer) => void): void {
    this.stream.on("data", listener);
  }
  onEnd(listener: () => void): void {
    this.stream.on("end", listener);
  }
  onClose(listener: () => void): void {
    this.stream.on("close", listener);
    this.stream.resume(); // a stream nobody reads (Subscribe) still reaches its end and closes
  }
}

const GRPC_RESPONSE = responseBlock("application/grpc");
const OK_TRAILERS = trailersBlock({ "grpc-status": "0" });
const UNIMPLEMENTED = literalBlock([
  [":status", "200"],
  ["content-type", "application/grpc"],
  ["grpc-status", "12"],
]);

class FramerFloorStream implements FloorStream {
  readonly path: string;
  constructor(private readonly stream: FramerStream) {
    this.path = stream.headers[":path"] ?? "";
  }
  respond(): void {
    this.stream.respond(GRPC_RESPONSE);
  }
  write(bytes: Buffer): void {
    this.stream.write(bytes);
  }
  end(last?: Buffer): void {
    if (last) this.stream.write(last);
    this.stream.end(OK_TRAILERS);
  }
  unimplemented(): void {
    this.stream.respond(UNIMPLEMENTED, true);
  }
  onData(listener: (chunk: Buffer) => void): void {
    this.stream.onData = listener;
  }
  onEnd(listener: () => void): void {
    this.stream.onEnd = listener;
  }
  onClose(listener: () => void): void {
    this.stream.onClose = listener;
  }
}

// FLOOR_HTTP2=framer: the same floor on bench/lib/h2-framer.ts instead of node:http2.
const useFramer = process.env.FLOOR_HTTP2 === "framer";
// The same flow-control windows as seqcast's broker (src/server/server.ts, H2_WINDOW_BYTES): Node's floor at its best.
const WINDOW = 1024 * 1024;
const server = useFramer
  ? net.createServer({ noDelay: true }, (socket) => new FramerConnection(socket, (stream) => handle(new FramerFloorStream(stream))))
  : http2
      .createServer({ settings: { initialWindowSize: WINDOW } })
      .on("session", (session) => session.setLocalWindowSize(WINDOW))
      .on("stream", (stream, headers) => handle(new NodeFloorStream(stream, headers)));

server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ port, pid: process.pid })}\n`);
});
const stop = () => process.exit(0);
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.on("error", stop);
// "elu" answers the event loop's cumulative idle/active ms, as bench/broker-child.ts does.
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk: string) => {
  for (const line of chunk.split("\n"))
    if (line.trim() === "elu") {
      const { idle, active } = performance.eventLoopUtilization();
      process.stdout.write(`${JSON.stringify({ elu: { idle, active } })}\n`);
    }
});
