/**
 * A hand-written HTTP/2 connection (RFC 9113, cleartext with prior knowledge,
 * or over a TLS socket that negotiated h2) on a plain socket, leaner still
 * than the broker's own (src/server/h2/session.ts, whose frames and HPACK it
 * shares): streams are plain objects with callbacks, not Duplex streams, and
 * nothing is checked. It is a measuring stick, not a server or an SDK:
 * - as a server, bench/floor-child.ts runs on it with FLOOR_HTTP2=framer to
 *   show what Node costs with the least HTTP/2 machinery possible, next to
 *   the same floor on node:http2 (its streams are Duplex objects driven
 *   across the C++ boundary, an event and callbacks per frame);
 * - as a client, it carries the load generator's seqcast connections
 *   (bench/lean-client.ts), as nats.js and ioredis carry the peers' on their
 *   own sockets: with node:http2's client, the bench's 100 subscribers spent
 *   about 9 us of the load generator's CPU per delivery, most of it in
 *   nghttp2 and the C++ boundary, and the one process running them all was
 *   as busy as the broker it measured.
 *
 * What it does: the preface and SETTINGS exchange, HPACK decoding (dynamic
 * table, Huffman), HEADERS/CONTINUATION/DATA (padding, priority), flow
 * control both ways (a server grants what it consumed at the end of each
 * read, a client once half a window was consumed; both honour the peer's
 * connection and stream windows, queueing what they do not allow),
 * RST_STREAM, PING, GOAWAY. What it leaves out: server push, priorities,
 * header size limits, stream concurrency limits and every check a server
 * facing the internet needs.
 */
import type net from "node:net";
import {
  ACK,
  CONTINUATION,
  DATA,
  END_HEADERS,
  END_STREAM,
  GOAWAY,
  HEADERS,
  Output,
  PADDED,
  PING,
  PREFACE,
  PRIORITY_FLAG as PRIORITY,
  RST_STREAM,
  SETTINGS,
  SETTINGS_ENABLE_PUSH,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SETTINGS_MAX_CONCURRENT_STREAMS,
  WINDOW_UPDATE,
} from "../../src/server/h2/frames.js";
import { FrameReader } from "../../src/server/h2/frame-reader.js";
import { HpackDecoder, literalBlock } from "../../src/server/h2/hpack.js";

/** What this side grants: per stream and (added to the initial 65,535) per connection. */
const RECEIVE_WINDOW = 1 << 20;
/** A client stream's write() returns false once this much waits for the peer's windows. */
const WRITE_HIGH_WATER = 1 << 20;

/** The response header block `:status: 200`, `content-type: <type>`. */
export const responseBlock = (contentType: string) => literalBlock([[":status", "200"], ["content-type", contentType]]);
/** A trailers block. */
export const trailersBlock = (fields: Record<string, string>) => literalBlock(Object.entries(fields));

function ignore(): void {}

export class FramerStream {
  onData: (chunk: Buffer) => void = ignore;
  onEnd: () => void = ignore;
  onClose: () => void = ignore;
  /** A client's stream: the response's headers, then its trailers (`endStream`). */
  onHeaders: (headers: Record<string, string>, endStream: boolean) => void = ignore;
  /** What write() queued went out after it returned false. */
  onDrain: () => void = ignore;
  /** The code of the peer's RST_STREAM, if it reset the stream. */
  resetCode: number | undefined;
  /** The peer's window for this stream. */
  window: number;
  consumed = 0;
  private queue: Buffer[] = [];
  private queued = 0;
  private trailers: Buffer | undefined;
  /** A client's end of the request is due once the queue is empty. */
  private requestEnding = false;
  private wantDrain = false;
  closed = false;
  remoteEnded = false;

  constructor(
    readonly id: number,
    readonly headers: Record<string, string>,
    private readonly connection: FramerConnection,
    window: number,
  ) {
    this.window = window;
  }

  respond(block: Buffer, endStream = false): void {
    this.connection.output().frame(HEADERS, END_HEADERS | (endStream ? END_STREAM : 0), this.id, block);
    if (endStream) this.connection.finish(this);
  }

  /** Queues data; false once more than WRITE_HIGH_WATER waits for the windows (onDrain follows). */
  write(data: Buffer): boolean {
    if (this.closed) return false;
    this.queue.push(data);
    this.queued += data.length;
    this.pump();
    if (this.queued <= WRITE_HIGH_WATER) return true;
    this.wantDrain = true;
    return false;
  }

  /** A client's end of its request (an empty DATA frame with END_STREAM), after whatever is queued. */
  endRequest(): void {
    if (this.closed) return;
    this.requestEnding = true;
    this.pump();
  }

  /** Trailers after whatever data is still queued; the stream ends with them. */
  end(trailers: Buffer): void {
    if (this.closed) return;
    this.trailers = trailers;
    this.pump();
  }

  /** Sends what the windows allow: DATA frames, then the trailers once nothing is queued. */
  pump(): void {
    const c = this.connection;
    while (this.queued > 0 && this.window > 0 && c.window > 0) {
      const head = this.queue[0]!;
      const n = Math.min(head.length, this.window, c.window, c.peerMaxFrame);
      c.output().frame(DATA, 0, this.id, head, 0, n);
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
      this.queued -= n;
      this.window -= n;
      c.window -= n;
    }
    if (this.queued > 0) return void c.blocked.add(this);
    if (this.trailers) {
      c.output().frame(HEADERS, END_HEADERS | END_STREAM, this.id, this.trailers);
      this.trailers = undefined;
      c.finish(this);
    } else if (this.requestEnding) {
      this.requestEnding = false;
      c.output().frame(DATA, END_STREAM, this.id);
    }
    if (this.wantDrain) {
      this.wantDrain = false;
      this.onDrain();
    }
  }
}

export class FramerConnection {
  /** The peer's connection window, its largest frame and its initial stream window. */
  window = 65_535;
  peerMaxFrame = 16_384;
  private peerInitialWindow = 65_535;
  readonly blocked = new Set<FramerStream>();
  private readonly streams = new Map<number, FramerStream>();
  private readonly hpack = new HpackDecoder();
  private readonly reader: FrameReader;
  private readonly out = new Output();
  private flushing = false;
  private consumed = 0;
  private readonly granting = new Set<FramerStream>();
  private headerBlock: { stream: number; parts: Buffer[]; endStream: boolean } | undefined;

  /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS, once it said. */
  peerMaxConcurrentStreams: number | undefined;
  /** A client's next stream id. */
  private nextStream = 1;
  /** Windows are granted once this much was consumed: a server grants every read's, a client half a window (as nghttp2 does), so a subscriber does not answer each delivery with a write. */
  private readonly grantAt: number;

  /**
   * `role`: a server (the floor) takes streams from the peer and hands each
   * to `onStream`; a client (the bench's lean client) sends the preface and
   * opens its own with request().
   */
  constructor(
    private readonly socket: net.Socket,
    private readonly onStream: (stream: FramerStream) => void,
    private readonly role: "server" | "client" = "server",
  ) {
    socket.setNoDelay(true);
    this.grantAt = role === "client" ? RECEIVE_WINDOW / 2 : 0;
    if (role === "client") socket.write(PREFACE);
    // The broker's own frame reader (src/server/h2/frame-reader.ts): the floor splits frames as seqcast does.
    this.reader = new FrameReader(
      {
        frame: (buf, type, flags, id, start, end) => this.frame(buf, type, flags, id, start, end),
        fail: (code) => this.fail(code),
        badPreface: () => this.socket.destroy(),
        get destroyed() {
          return socket.destroyed;
        },
      },
      role === "server",
    );
    this.output().settings([
      [role === "client" ? SETTINGS_ENABLE_PUSH : SETTINGS_MAX_CONCURRENT_STREAMS, role === "client" ? 0 : 0x7fffffff],
      [SETTINGS_INITIAL_WINDOW_SIZE, RECEIVE_WINDOW],
    ]);
    this.output().u32(WINDOW_UPDATE, 0, RECEIVE_WINDOW);
    socket.on("data", (chunk: Buffer) => this.read(chunk));
    socket.on("error", () => socket.destroy());
    socket.on("close", () => {
      for (const stream of this.streams.values()) this.finish(stream);
    });
  }

  /** Where this turn's frames go; they are written to the socket when the turn's microtasks run. */
  output(): Output {
    if (!this.flushing) {
      this.flushing = true;
      queueMicrotask(this.flush);
    }
    return this.out;
  }

  /** One write per turn: every frame queued, and the windows granted for what was read. */
  private readonly flush = (): void => {
    this.flushing = false;
    if (this.consumed > this.grantAt) {
      this.out.u32(WINDOW_UPDATE, 0, this.consumed);
      this.consumed = 0;
    }
    for (const stream of this.granting) {
      if (stream.remoteEnded || stream.closed) this.granting.delete(stream);
      else if (stream.consumed > this.grantAt) {
        this.out.u32(WINDOW_UPDATE, stream.id, stream.consumed);
        stream.consumed = 0;
        this.granting.delete(stream);
      }
    }
    const bytes = this.out.take();
    if (!this.socket.destroyed && bytes.length > 0) this.socket.write(bytes);
  };

  /** A client's new stream, its request headers sent (`endStream`: a request without a body). */
  request(block: Buffer, endStream = false): FramerStream {
    const stream = new FramerStream(this.nextStream, {}, this, this.peerInitialWindow);
    this.nextStream += 2;
    this.streams.set(stream.id, stream);
    this.output().headers(stream.id, block, endStream, this.peerMaxFrame);
    return stream;
  }

  /** Cancels a stream (RST_STREAM CANCEL). */
  reset(stream: FramerStream): void {
    if (stream.closed) return;
    this.output().u32(RST_STREAM, stream.id, 0x8);
    this.finish(stream);
  }

  destroy(): void {
    this.socket.destroy();
  }

  finish(stream: FramerStream): void {
    if (stream.closed) return;
    stream.closed = true;
    this.streams.delete(stream.id);
    this.blocked.delete(stream);
    stream.onClose();
  }

  private fail(code: number): void {
    const goaway = Buffer.alloc(8);
    goaway.writeUInt32BE(code, 4);
    this.output().frame(GOAWAY, 0, 0, goaway);
    queueMicrotask(() => this.socket.end());
  }

  private read(chunk: Buffer): void {
    this.reader.read(chunk);
    if (this.consumed > this.grantAt) this.output();
  }

  private frame(buf: Buffer, type: number, flags: number, id: number, start: number, end: number): void {
    const length = end - start; // what flow control counts, padding included
    if ((type === DATA || type === HEADERS) && flags & PADDED) end -= buf[start++]!;
    switch (type) {
      case DATA: {
        this.consumed += length;
        const stream = this.streams.get(id);
        if (!stream) return;
        stream.consumed += end - start;
        this.granting.add(stream);
        if (end > start) stream.onData(buf.subarray(start, end));
        if (flags & END_STREAM) this.remoteEnd(stream);
        return;
      }
      case HEADERS:
        if (flags & PRIORITY) start += 5;
        this.headerBlock = { stream: id, parts: [buf.subarray(start, end)], endStream: (flags & END_STREAM) !== 0 };
        if (flags & END_HEADERS) this.headersDone();
        return;
      case CONTINUATION:
        if (!this.headerBlock || this.headerBlock.stream !== id) return this.fail(0x1);
        this.headerBlock.parts.push(buf.subarray(start, end));
        if (flags & END_HEADERS) this.headersDone();
        return;
      case RST_STREAM: {
        const stream = this.streams.get(id);
        if (!stream) return;
        stream.resetCode = buf.readUInt32BE(start);
        this.finish(stream);
        return;
      }
      case SETTINGS:
        if (flags & ACK) return;
        for (let at = start; at + 6 <= end; at += 6) this.setting(buf.readUInt16BE(at), buf.readUInt32BE(at + 2));
        this.output().frame(SETTINGS, ACK, 0);
        return;
      case PING:
        if (!(flags & ACK)) this.output().frame(PING, ACK, 0, buf, start, end);
        return;
      case GOAWAY:
        this.socket.end();
        return;
      case WINDOW_UPDATE: {
        const increment = buf.readUInt32BE(start) & 0x7fffffff;
        if (id === 0) {
          this.window += increment;
          for (const stream of [...this.blocked]) {
            this.blocked.delete(stream);
            stream.pump();
          }
        } else {
          const stream = this.streams.get(id);
          if (stream) {
            stream.window += increment;
            stream.pump();
          }
        }
        return;
      }
      default:
        return; // PRIORITY, PUSH_PROMISE (never from a client), unknown types: ignored as RFC 9113 asks
    }
  }

  private setting(id: number, value: number): void {
    if (id === 0x4) {
      const delta = value - this.peerInitialWindow;
      this.peerInitialWindow = value;
      for (const stream of this.streams.values()) stream.window += delta;
    } else if (id === 0x5) this.peerMaxFrame = value;
    else if (id === 0x3) this.peerMaxConcurrentStreams = value;
  }

  private headersDone(): void {
    const { stream: id, parts, endStream } = this.headerBlock!;
    this.headerBlock = undefined;
    const headers: Record<string, string> = {};
    try {
      this.hpack.decode(parts.length === 1 ? parts[0]! : Buffer.concat(parts), (name, value) => (headers[name] = value));
    } catch {
      return this.fail(0x9); // COMPRESSION_ERROR: the connection's table can no longer be trusted
    }
    const existing = this.streams.get(id);
    if (existing) {
      if (this.role === "client") existing.onHeaders(headers, endStream);
      if (endStream) this.remoteEnd(existing); // a client's trailers, a server's response or trailers
      return;
    }
    if (this.role === "client") return; // a server opens no streams to a client that turned push off
    const stream = new FramerStream(id, headers, this, this.peerInitialWindow);
    this.streams.set(id, stream);
    this.onStream(stream);
    if (endStream) this.remoteEnd(stream);
  }

  private remoteEnd(stream: FramerStream): void {
    stream.remoteEnded = true;
    this.granting.delete(stream);
    stream.onEnd();
    if (this.role === "client") this.finish(stream); // the response is complete
  }
}
