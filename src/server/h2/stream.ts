import type { OutgoingHttpHeaders } from "node:http2";
import { Duplex } from "node:stream";
import { DATA, END_STREAM, INTERNAL_ERROR, NO_ERROR, CANCEL, RST_STREAM } from "./frames.js";
import { literalBlock } from "./hpack.js";
import type { H2Session } from "./session.js";

export interface RespondOptions {
  endStream?: boolean;
  /** 'wantTrailers' comes once the last DATA is out; sendTrailers() then ends the stream. */
  waitForTrailers?: boolean;
  /** Adds a `date` header (Node's compatibility response asks for it). */
  sendDate?: boolean;
}

/** Header fields of an outgoing block: `:status` first, arrays as repeated fields, undefined left out. */
function fieldsOf(headers: OutgoingHttpHeaders, sendDate: boolean | undefined): Array<[string, string]> {
  const fields: Array<[string, string]> = [];
  const status = headers[":status"];
  if (status !== undefined) fields.push([":status", String(status)]);
  for (const name in headers) {
    const value = headers[name];
    if (name === ":status" || value === undefined || value === null) continue;
    const lower = name.toLowerCase();
    if (Array.isArray(value)) for (const one of value) fields.push([lower, String(one)]);
    else fields.push([lower, String(value)]);
  }
  if (sendDate && headers.date === undefined) fields.push(["date", httpDate()]);
  return fields;
}

/** Encoded blocks by their fields: a call's response headers and trailers repeat call after call. */
const blocks = new Map<string, Buffer>();
const MAX_BLOCKS = 256;

function headerBlock(headers: OutgoingHttpHeaders, sendDate: boolean | undefined): Buffer {
  const fields = fieldsOf(headers, sendDate);
  let key = "";
  for (const [name, value] of fields) key += `${name}\0${value}\0`;
  let block = blocks.get(key);
  if (block) return block;
  block = literalBlock(fields);
  if (key.length <= 512) {
    if (blocks.size >= MAX_BLOCKS) blocks.clear();
    blocks.set(key, block);
  }
  return block;
}

let dateSecond = 0;
let dateText = "";
function httpDate(): string {
  const now = Date.now();
  if (now - dateSecond >= 1000) {
    dateSecond = now - (now % 1000);
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

const ignore = () => {};

/**
 * Bytes a stream may have waiting for the peer's windows before its writes
 * wait too (write() then returns false, 'drain' once it is below again).
 * Waiting for every byte to go out instead made a PublishStream stop reading
 * whenever a Node client's 64 KiB window was full of results and resume only
 * once all were out: ~62,000 acknowledged publishes/s against ~96,000 with
 * this (the bench's publisher, window 1,024, batch 64; node:http2 ~81,000).
 */
const QUEUE_BYTES = 64 * 1024;

/**
 * One HTTP/2 stream of the broker's own connections (session.ts): a Duplex
 * with the members of Node's ServerHttp2Stream that the gRPC fast path
 * (grpc/call.ts) and Node's compatibility request and response
 * (http2.Http2ServerRequest/Response, which connect-node and the page are
 * served through) use: respond, sendTrailers and 'wantTrailers', close(code),
 * 'aborted', headersSent, rstCode, endAfterHeaders.
 *
 * Flow control: what the peer may send on this stream is granted back as
 * the reader takes it (a paused or slow reader holds the peer back); what it
 * writes goes out as the peer's windows allow, the rest waits here, and a
 * write's callback (so 'drain') waits while more than QUEUE_BYTES do.
 *
 * `session` is undefined, as Node's compatibility objects then look for the
 * socket's members (`req.socket.encrypted`, `remoteAddress`) on the stream
 * itself; `h2` is the connection.
 */
export class H2Stream extends Duplex {
  readonly session = undefined;
  headersSent = false;
  sentHeaders: OutgoingHttpHeaders | undefined;
  rstCode: number | undefined;
  aborted = false;
  /** The peer's window for this stream, and ours (what it may still send). */
  sendWindow: number;
  recvWindow: number;
  /** Bytes read and taken by the reader, to grant back with the turn's WINDOW_UPDATE. */
  toGrant = 0;
  remoteEnded = false;
  private held = 0;
  private queue: Buffer[] = [];
  private queued = 0;
  private writeDone: ((error?: Error | null) => void) | undefined;
  private ending: ((error?: Error | null) => void) | undefined;
  private localEnded = false;
  private waitForTrailers = false;
  private trailersWanted = false;
  private trailerBlock: Buffer | undefined;
  private resetAfterFlush: number | undefined;
  private protocolClosed = false;

  constructor(
    readonly id: number,
    readonly h2: H2Session,
    readonly endAfterHeaders: boolean,
    readonly headRequest: boolean,
  ) {
    super({ autoDestroy: false, allowHalfOpen: true });
    this.sendWindow = h2.peerInitialWindow;
    this.recvWindow = h2.localWindow;
    // A stream's errors are its call's end, never the process's.
    this.on("error", ignore);
  }

  /** The stream is done: both sides ended, or it was reset. */
  // @ts-expect-error Duplex's typings declare `closed` a property; it is a getter there too.
  override get closed(): boolean {
    return this.protocolClosed;
  }

  get pending(): boolean {
    return false;
  }

  get state(): { localClose: number; remoteClose: number } {
    return { localClose: this.localEnded ? 1 : 0, remoteClose: this.remoteEnded ? 1 : 0 };
  }

  // What Node's compatibility request's `socket` reads, from the connection's socket.
  get encrypted(): boolean {
    return this.h2.encrypted;
  }
  get remoteAddress(): string | undefined {
    return this.h2.socket.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.h2.socket.remotePort;
  }
  get remoteFamily(): string | undefined {
    return this.h2.socket.remoteFamily;
  }
  get localAddress(): string | undefined {
    return this.h2.socket.localAddress;
  }
  get localPort(): number | undefined {
    return this.h2.socket.localPort;
  }

  respond(headers: OutgoingHttpHeaders = {}, options: RespondOptions = {}): void {
    if (this.headersSent) throw Object.assign(new Error("Response has already been initiated."), { code: "ERR_HTTP2_HEADERS_SENT" });
    this.sentHeaders = headers;
    this.respondBlock(headerBlock(headers, options.sendDate), options);
  }

  /** respond() with a header block encoded beforehand (literalBlock): the gRPC fast path's constant headers. */
  respondBlock(block: Buffer, options: RespondOptions = {}): void {
    if (this.headersSent) throw Object.assign(new Error("Response has already been initiated."), { code: "ERR_HTTP2_HEADERS_SENT" });
    if (this.protocolClosed) return;
    this.headersSent = true;
    this.waitForTrailers = options.waitForTrailers === true;
    const endStream = options.endStream === true || this.headRequest;
    this.h2.output().headers(this.id, block, endStream, this.h2.peerMaxFrame);
    if (endStream) {
      this.localEnded = true;
      this.end();
      this.maybeClosed();
    }
  }

  /** Informational (1xx) headers before the response. */
  additionalHeaders(headers: OutgoingHttpHeaders): void {
    if (this.headersSent || this.protocolClosed) return;
    this.h2.output().headers(this.id, headerBlock(headers, false), false, this.h2.peerMaxFrame);
  }

  /** The trailers that end the stream, after its last DATA (call it on 'wantTrailers'). */
  sendTrailers(headers: OutgoingHttpHeaders): void {
    this.sendTrailersBlock(headerBlock(headers, false));
  }

  sendTrailersBlock(block: Buffer): void {
    if (this.protocolClosed || this.localEnded) return;
    this.trailerBlock = block;
    this.pump();
  }

  /**
   * RST_STREAM with `code`. NO_ERROR waits until what was written went out
   * (it stops a client's upload after a complete response); any other code
   * drops it.
   */
  close(code = NO_ERROR, callback?: () => void): void {
    if (callback) this.once("close", callback);
    if (this.protocolClosed) return;
    if (code === NO_ERROR && (this.queued > 0 || (this.ending !== undefined && !this.localEnded))) {
      this.resetAfterFlush = code;
      return;
    }
    this.rstCode = code;
    this.h2.output().u32(RST_STREAM, this.id, code);
    this.closeProtocol(!this.localEnded);
  }

  setTimeout(_ms: number, _callback?: () => void): this {
    return this; // the broker's own timeouts (connections.ts) govern its streams
  }

  priority(): void {}

  pushStream(_headers: OutgoingHttpHeaders, _options: unknown, callback: (error: Error) => void): void {
    process.nextTick(callback, Object.assign(new Error("HTTP/2 server push is disabled"), { code: "ERR_HTTP2_PUSH_DISABLED" }));
  }

  /** DATA from the peer: `bytes` counts padding, which is granted back at once. */
  receive(chunk: Buffer, bytes: number): void {
    this.recvWindow -= bytes;
    this.toGrant += bytes - chunk.length;
    if (chunk.length > 0) {
      if (this.push(chunk)) this.toGrant += chunk.length;
      else this.held += chunk.length;
    }
    if (this.toGrant > 0) this.h2.grant(this);
  }

  /** The peer's END_STREAM. */
  remoteEnd(): void {
    if (this.remoteEnded) return;
    this.remoteEnded = true;
    this.push(null);
    this.maybeClosed();
  }

  /** The peer reset the stream, or the connection is gone. */
  abort(code: number): void {
    if (this.protocolClosed) return;
    this.rstCode = code;
    this.closeProtocol(!this.localEnded);
  }

  override _read(): void {
    if (this.held === 0) return;
    this.toGrant += this.held;
    this.held = 0;
    this.h2.grant(this);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.enqueue(chunk);
    if (this.queued <= QUEUE_BYTES) callback();
    else this.writeDone = callback;
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    for (let i = 0; i < chunks.length; i++) this.enqueue(chunks[i]!.chunk, i === chunks.length - 1);
    if (this.queued <= QUEUE_BYTES) callback();
    else this.writeDone = callback;
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.localEnded || this.protocolClosed) return callback();
    if (!this.headersSent) this.respond({ ":status": 200 });
    if (this.localEnded) return callback();
    this.ending = callback;
    this.pump();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.protocolClosed) {
      // Destroyed by its user before it ended: the peer is told.
      this.rstCode = error ? INTERNAL_ERROR : CANCEL;
      this.h2.output().u32(RST_STREAM, this.id, this.rstCode);
      this.protocolClosed = true;
      this.h2.forget(this);
    }
    this.queue = [];
    this.queued = 0;
    // A write or end still waiting for the peer's window will never go out.
    const written = this.writeDone;
    const ended = this.ending;
    if (written || ended) {
      this.writeDone = this.ending = undefined;
      const closed = error ?? Object.assign(new Error("the HTTP/2 stream was closed"), { code: "ERR_HTTP2_INVALID_STREAM" });
      written?.(closed);
      ended?.(closed);
    }
    callback(error);
  }

  private enqueue(chunk: Buffer, last = true): void {
    if (this.protocolClosed || this.localEnded) return;
    if (!this.headersSent) this.respond({ ":status": 200 });
    if (chunk.length > 0) {
      this.queue.push(chunk);
      this.queued += chunk.length;
    }
    if (last) this.pump();
  }

  /** Sends what the windows allow: DATA frames, then the end of the stream once nothing is queued. */
  pump(): void {
    if (this.protocolClosed) return;
    const h2 = this.h2;
    while (this.queued > 0 && this.sendWindow > 0 && h2.sendWindow > 0 && !h2.congested()) {
      const head = this.queue[0]!;
      const n = Math.min(head.length, this.sendWindow, h2.sendWindow, h2.peerMaxFrame);
      h2.output().frame(DATA, 0, this.id, head, 0, n);
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
      this.queued -= n;
      this.sendWindow -= n;
      h2.sendWindow -= n;
    }
    if (this.queued > 0) h2.block(this);
    const written = this.writeDone;
    if (written && this.queued <= QUEUE_BYTES) {
      this.writeDone = undefined;
      written();
    }
    if (this.queued > 0 || this.ending === undefined || this.localEnded || this.protocolClosed) return;
    if (this.waitForTrailers && !this.trailersWanted) {
      this.trailersWanted = true;
      this.emit("wantTrailers");
      return; // sendTrailers() pumps again
    }
    if (this.waitForTrailers && this.trailerBlock === undefined) return;
    this.localEnded = true;
    if (this.trailerBlock && this.trailerBlock.length > 0) h2.output().headers(this.id, this.trailerBlock, true, h2.peerMaxFrame);
    else h2.output().frame(DATA, END_STREAM, this.id);
    this.trailerBlock = undefined;
    const ended = this.ending;
    this.ending = undefined;
    ended();
    const reset = this.resetAfterFlush;
    this.resetAfterFlush = undefined;
    if (reset !== undefined) this.close(reset);
    else this.maybeClosed();
  }

  private maybeClosed(): void {
    if (this.localEnded && this.remoteEnded && !this.protocolClosed) this.closeProtocol(false);
  }

  /** The stream is over on the wire: the connection forgets it, and 'close' follows the reader's 'end'. */
  private closeProtocol(aborted: boolean): void {
    this.protocolClosed = true;
    this.h2.forget(this);
    this.queue = [];
    this.queued = 0;
    if (aborted) {
      this.aborted = true;
      this.emit("aborted");
      this.destroy();
    } else process.nextTick(destroyStream, this);
  }
}

function destroyStream(stream: H2Stream): void {
  stream.destroy();
}
