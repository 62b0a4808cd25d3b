import { EventEmitter } from "node:events";
import type { IncomingHttpHeaders } from "node:http2";
import type net from "node:net";
import * as F from "./frames.js";
import { Pings, ResetRate } from "./control.js";
import { FrameReader } from "./frame-reader.js";
import { HpackDecoder } from "./hpack.js";
import { requestHeaders } from "./request-headers.js";
import { H2Stream } from "./stream.js";

export interface H2SessionOptions {
  /** What the broker grants each stream, and the connection, before WINDOW_UPDATE. */
  windowBytes: number;
  /** Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused (REFUSED_STREAM). */
  maxConcurrentStreams: number;
  /** Largest header list of a request, names and values plus 32 bytes per field (SETTINGS_MAX_HEADER_LIST_SIZE). */
  maxHeaderListBytes: number;
  /** A new stream and its request headers (a null-prototype object, as Node's), and the fields in order. */
  onStream(stream: H2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]): void;
}

/** Compressed header bytes a block may take across CONTINUATION frames before the connection is closed (CONTINUATION floods). */
const MAX_HEADER_BLOCK_FACTOR = 2;
/** Output not yet taken by the socket beyond which DATA waits and control frames from the peer close the connection. */
const CONGESTED_BYTES = 1024 * 1024;
const MAX_CONGESTED_BYTES = 16 * 1024 * 1024;

/**
 * One HTTP/2 server connection (RFC 9113) on a socket the port handed over
 * (plaintext with prior knowledge, or TLS with ALPN `h2`): frames parsed
 * from the socket's chunks, every frame of a turn written in one socket
 * write. It replaces node:http2's server session, which cost ~50 µs of CPU
 * per unary call against ~10 µs here (bench: the floor on both).
 *
 * It speaks to the members of Node's ServerHttp2Session that the broker uses
 * (close() for GOAWAY, destroy(), ping(), 'remoteSettings', 'close'). What
 * it refuses: a bad preface, frames larger than 16 KiB, broken HPACK, header
 * lists over the limit, streams over the concurrency limit, windows
 * overrun, and floods of resets, PINGs or SETTINGS from a peer that does
 * not read. No server push, no priorities (both optional).
 */
export class H2Session extends EventEmitter {
  closed = false;
  destroyed = false;
  /** The peer's connection window; its largest frame and initial stream window. */
  sendWindow = F.DEFAULT_WINDOW;
  peerMaxFrame = F.DEFAULT_MAX_FRAME;
  peerInitialWindow = F.DEFAULT_WINDOW;
  readonly localWindow: number;
  readonly encrypted: boolean;
  private recvWindow: number;
  private connectionToGrant = 0;
  /** Connection window owed that is granted without waiting for another write (see grant()). */
  private readonly grantAloneBytes: number;
  private readonly streams = new Map<number, H2Stream>();
  private lastStreamId = 0;
  private readonly blocked = new Set<H2Stream>();
  private readonly granting = new Set<H2Stream>();
  private readonly hpack = new HpackDecoder();
  /** A turn's frames, from one buffer kept while the socket takes each write whole (frames.ts Output); a closed socket's are dropped. */
  private readonly out = new F.Output(
    (bytes) => this.socket.destroyed || this.socket.writableEnded || (this.socket.write(bytes), this.socket.writableLength === 0),
  );
  private flushing = false;
  private ending = false;
  private readonly reader: FrameReader;
  private settled = false;
  private headerBlock: { id: number; parts: Buffer[]; size: number; endStream: boolean } | undefined;
  private readonly pings = new Pings();
  private readonly resets = new ResetRate();

  constructor(
    readonly socket: net.Socket,
    private readonly options: H2SessionOptions,
  ) {
    super();
    this.encrypted = (socket as net.Socket & { encrypted?: boolean }).encrypted === true;
    this.localWindow = options.windowBytes;
    this.recvWindow = Math.max(F.DEFAULT_WINDOW, options.windowBytes);
    this.grantAloneBytes = this.recvWindow / 4;
    const session = this;
    this.reader = new FrameReader({
      frame: (buf, type, flags, id, start, end) => this.frame(buf, type, flags, id, start, end),
      fail: (code) => this.fail(code),
      badPreface: () => this.destroy(),
      get destroyed() {
        return session.destroyed;
      },
    });
    socket.setNoDelay?.(true);
    this.output().settings([
      [F.SETTINGS_MAX_CONCURRENT_STREAMS, options.maxConcurrentStreams],
      [F.SETTINGS_INITIAL_WINDOW_SIZE, options.windowBytes],
      [F.SETTINGS_MAX_HEADER_LIST_SIZE, options.maxHeaderListBytes],
      [F.SETTINGS_ENABLE_PUSH, 0],
    ]);
    if (this.recvWindow > F.DEFAULT_WINDOW) this.out.u32(F.WINDOW_UPDATE, 0, this.recvWindow - F.DEFAULT_WINDOW);
    socket.on("data", (chunk: Buffer) => this.reader.read(chunk));
    socket.on("drain", () => this.unblock());
    socket.on("error", () => socket.destroy());
    socket.once("close", () => this.closed_());
    socket.resume();
  }

  /** Open streams. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** GOAWAY: the streams open go on, new ones are refused; the connection closes when the last ends. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.output().goaway(this.lastStreamId, F.NO_ERROR);
    if (this.streams.size === 0) this.end();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = this.closed = true;
    this.socket.destroy();
  }

  /** PINGs the peer; `callback` when it answers (or with an error when the connection ends first). False when too many are out. */
  ping(callback: (error: Error | null) => void): boolean {
    const id = this.destroyed ? undefined : this.pings.add(callback);
    if (id === undefined) return false;
    const at = this.output().frame(F.PING, 0, 0, undefined, 0, 8);
    this.out.buf.writeUInt32BE(0, at);
    this.out.buf.writeUInt32BE(id, at + 4);
    return true;
  }

  /**
   * Where frames go; they are written to the socket in one write when the
   * current callback's microtasks run. Writing once per turn of the event
   * loop instead (setImmediate, as node:http2 does) made no measurable
   * difference to a TLS fan-out and halved a SQLite broker's unary calls
   * (a response waited a turn, so fewer calls shared a commit): 23,201
   * against 37,007 calls/s from h2load in the full runs, 31-46 against
   * 21-23 µs per call probed alone.
   */
  output(): F.Output {
    if (!this.flushing) {
      this.flushing = true;
      queueMicrotask(this.flush);
    }
    return this.out;
  }

  /** Output the socket has not taken yet: DATA waits beyond this (socket 'drain' resumes it). */
  congested(): boolean {
    return this.socket.writableLength + this.out.length > CONGESTED_BYTES;
  }

  /** A stream with DATA waiting for a window (or the socket). */
  block(stream: H2Stream): void {
    this.blocked.add(stream);
  }

  /**
   * A stream whose reader took bytes: granted back with the next write, or
   * at once when a quarter of its window is owed. Window owed to the peer
   * goes out with whatever the broker writes next (a response, results)
   * instead of in a write of its own: one WINDOW_UPDATE alone per read was
   * a second socket write per read for the broker, and a second read for
   * the client. Withholding less than a quarter leaves the peer at least
   * three quarters of every window, so it never waits on one.
   */
  grant(stream: H2Stream): void {
    this.granting.add(stream);
    if (stream.toGrant >= this.localWindow / 4) this.output();
  }

  /** A stream that is over. */
  forget(stream: H2Stream): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    this.blocked.delete(stream);
    this.granting.delete(stream);
    if (this.closed && this.streams.size === 0) this.end();
  }

  private readonly flush = (): void => {
    this.flushing = false;
    if (this.connectionToGrant > 0) {
      this.out.u32(F.WINDOW_UPDATE, 0, this.connectionToGrant);
      this.recvWindow += this.connectionToGrant;
      this.connectionToGrant = 0;
    }
    for (const stream of this.granting) {
      if (!stream.remoteEnded && !stream.closed && stream.toGrant > 0) {
        this.out.u32(F.WINDOW_UPDATE, stream.id, stream.toGrant);
        stream.recvWindow += stream.toGrant;
      }
      stream.toGrant = 0;
    }
    this.granting.clear();
    if (this.socket.destroyed || this.socket.writableEnded) return void (this.out.length = 0);
    this.out.flush();
    if (this.ending) this.socket.end(() => this.socket.destroy());
  };

  /** Closes the connection once what is queued is written (with the next flush). */
  private end(): void {
    this.ending = true;
    this.output();
  }

  /** A connection error (RFC 9113 §5.4.1): GOAWAY with its code, and the end of the connection. */
  private fail(code: number): void {
    if (this.destroyed) return;
    this.output().goaway(this.lastStreamId, code);
    this.destroyed = this.closed = true;
    this.flush();
    this.socket.end(() => this.socket.destroy());
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private closed_(): void {
    this.destroyed = this.closed = true;
    for (const stream of [...this.streams.values()]) stream.abort(F.CANCEL);
    this.pings.failAll();
    this.emit("close");
  }

  /** Streams waiting for the connection's window or the socket go on, in the order they stopped, while both allow. */
  private unblock(): void {
    if (this.blocked.size === 0) return;
    const waiting = [...this.blocked];
    this.blocked.clear();
    for (let i = 0; i < waiting.length; i++) {
      if (this.sendWindow <= 0 || this.congested()) {
        for (; i < waiting.length; i++) this.blocked.add(waiting[i]!);
        return;
      }
      waiting[i]!.pump();
    }
  }

  private frame(buf: Buffer, type: number, flags: number, id: number, start: number, end: number): void {
    if (!this.settled && type !== F.SETTINGS) return this.fail(F.PROTOCOL_ERROR); // the client's first frame is SETTINGS
    if (this.headerBlock && type !== F.CONTINUATION) return this.fail(F.PROTOCOL_ERROR);
    const length = end - start; // what flow control counts, padding included
    if ((type === F.DATA || type === F.HEADERS) && flags & F.PADDED) {
      if (length < 1 || buf[start]! >= length) return this.fail(F.PROTOCOL_ERROR);
      end -= buf[start++]!;
    }
    switch (type) {
      case F.DATA:
        return this.data(buf, flags, id, start, end, length);
      case F.HEADERS:
        if (id === 0 || id % 2 === 0) return this.fail(F.PROTOCOL_ERROR);
        if (flags & F.PRIORITY_FLAG) start += 5;
        if (start > end) return this.fail(F.FRAME_SIZE_ERROR);
        this.headerBlock = { id, parts: [], size: 0, endStream: (flags & F.END_STREAM) !== 0 };
        return this.continuation(buf, flags, id, start, end);
      case F.CONTINUATION:
        if (!this.headerBlock || this.headerBlock.id !== id) return this.fail(F.PROTOCOL_ERROR);
        return this.continuation(buf, flags, id, start, end);
      case F.RST_STREAM:
        if (id === 0 || length !== 4) return this.fail(length !== 4 ? F.FRAME_SIZE_ERROR : F.PROTOCOL_ERROR);
        if (id > this.lastStreamId) return this.fail(F.PROTOCOL_ERROR);
        return this.reset(id, buf.readUInt32BE(start));
      case F.SETTINGS:
        if (id !== 0) return this.fail(F.PROTOCOL_ERROR);
        if (flags & F.ACK) return length === 0 ? undefined : this.fail(F.FRAME_SIZE_ERROR);
        if (length % 6 !== 0) return this.fail(F.FRAME_SIZE_ERROR);
        if (this.settled && this.socket.writableLength > MAX_CONGESTED_BYTES) return this.fail(F.ENHANCE_YOUR_CALM);
        for (let at = start; at < end; at += 6) if (!this.setting(buf.readUInt16BE(at), buf.readUInt32BE(at + 2))) return;
        this.output().frame(F.SETTINGS, F.ACK, 0);
        this.settled = true;
        this.emit("remoteSettings");
        return;
      case F.PING:
        if (id !== 0 || length !== 8) return this.fail(id !== 0 ? F.PROTOCOL_ERROR : F.FRAME_SIZE_ERROR);
        if (flags & F.ACK) return this.pings.answered(buf.readUInt32BE(start + 4));
        if (this.socket.writableLength > MAX_CONGESTED_BYTES) return this.fail(F.ENHANCE_YOUR_CALM);
        this.output().frame(F.PING, F.ACK, 0, buf, start, end);
        return;
      case F.GOAWAY:
        // The client leaves: what is open finishes, then the connection closes.
        this.closed = true;
        if (this.streams.size === 0) this.end();
        return;
      case F.WINDOW_UPDATE:
        if (length !== 4) return this.fail(F.FRAME_SIZE_ERROR);
        return this.windowUpdate(id, buf.readUInt32BE(start) & 0x7fffffff);
      case F.PUSH_PROMISE:
        return this.fail(F.PROTOCOL_ERROR);
      default:
        return; // PRIORITY and unknown types are ignored, as RFC 9113 asks
    }
  }

  private data(buf: Buffer, flags: number, id: number, start: number, end: number, length: number): void {
    this.recvWindow -= length;
    if (this.recvWindow < 0) return this.fail(F.FLOW_CONTROL_ERROR);
    this.connectionToGrant += length;
    if (this.connectionToGrant >= this.grantAloneBytes) this.output();
    const stream = this.streams.get(id);
    if (!stream) {
      if (id === 0 || id > this.lastStreamId) return this.fail(F.PROTOCOL_ERROR);
      return; // a stream that is over (reset, or refused): its bytes only count for the connection
    }
    if (stream.remoteEnded) return stream.close(F.STREAM_CLOSED);
    if (stream.recvWindow < length) return stream.close(F.FLOW_CONTROL_ERROR);
    stream.receive(end > start ? buf.subarray(start, end) : EMPTY, length);
    if (flags & F.END_STREAM) stream.remoteEnd();
  }

  private continuation(buf: Buffer, flags: number, id: number, start: number, end: number): void {
    const block = this.headerBlock!;
    block.parts.push(buf.subarray(start, end));
    block.size += end - start;
    if (block.size > this.options.maxHeaderListBytes * MAX_HEADER_BLOCK_FACTOR) return this.fail(F.ENHANCE_YOUR_CALM);
    if (!(flags & F.END_HEADERS)) {
      // The block outlives this read: keep its bytes, not the read's buffer.
      block.parts[block.parts.length - 1] = Buffer.from(buf.subarray(start, end));
      return;
    }
    this.headerBlock = undefined;
    const existing = this.streams.get(id);
    const bytes = block.parts.length === 1 ? block.parts[0]! : Buffer.concat(block.parts);
    const decoded = requestHeaders(this.hpack, bytes, this.options.maxHeaderListBytes, existing !== undefined);
    if (decoded === "compression") return this.fail(F.COMPRESSION_ERROR);
    if (existing) {
      // Trailers: they end the request.
      if (!block.endStream || typeof decoded === "string") return existing.close(F.PROTOCOL_ERROR);
      existing.emit("trailers", decoded.headers, 0, decoded.raw);
      return existing.remoteEnd();
    }
    if (id <= this.lastStreamId) return this.fail(F.STREAM_CLOSED);
    this.lastStreamId = id;
    if (this.closed) return; // after GOAWAY: not processed, the client retries it elsewhere
    if (typeof decoded === "string" || this.streams.size >= this.options.maxConcurrentStreams) {
      const code = decoded === "too large" ? F.ENHANCE_YOUR_CALM : typeof decoded === "string" ? F.PROTOCOL_ERROR : F.REFUSED_STREAM;
      this.out.u32(F.RST_STREAM, id, code);
      this.output();
      return;
    }
    const method = decoded.headers[":method"];
    const stream = new H2Stream(id, this, block.endStream, method === "HEAD");
    this.streams.set(id, stream);
    if (block.endStream) stream.remoteEnd();
    this.options.onStream(stream, decoded.headers, decoded.raw);
  }

  private reset(id: number, code: number): void {
    const stream = this.streams.get(id);
    if (!stream) return;
    if (this.resets.overLimit()) return this.fail(F.ENHANCE_YOUR_CALM);
    stream.abort(code);
  }

  private setting(id: number, value: number): boolean {
    switch (id) {
      case F.SETTINGS_INITIAL_WINDOW_SIZE: {
        if (value > F.MAX_WINDOW) return this.fail(F.FLOW_CONTROL_ERROR), false;
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.streams.values()) stream.sendWindow += delta;
        if (delta > 0) this.unblockSoon();
        return true;
      }
      case F.SETTINGS_MAX_FRAME_SIZE:
        if (value < F.DEFAULT_MAX_FRAME || value > 0xffffff) return this.fail(F.PROTOCOL_ERROR), false;
        this.peerMaxFrame = value;
        return true;
      case F.SETTINGS_ENABLE_PUSH:
        if (value > 1) return this.fail(F.PROTOCOL_ERROR), false;
        return true;
      default:
        return true; // the header table size only bounds a table this side never uses; the rest concern push
    }
  }

  private windowUpdate(id: number, increment: number): void {
    if (id === 0) {
      if (increment === 0) return this.fail(F.PROTOCOL_ERROR);
      this.sendWindow += increment;
      if (this.sendWindow > F.MAX_WINDOW) return this.fail(F.FLOW_CONTROL_ERROR);
      return this.unblock();
    }
    const stream = this.streams.get(id);
    if (!stream) return;
    if (increment === 0) return stream.close(F.PROTOCOL_ERROR);
    stream.sendWindow += increment;
    if (stream.sendWindow > F.MAX_WINDOW) return stream.close(F.FLOW_CONTROL_ERROR);
    this.blocked.delete(stream);
    stream.pump();
  }

  private unblockSoon(): void {
    queueMicrotask(() => this.unblock());
  }
}

const EMPTY = Buffer.alloc(0);

