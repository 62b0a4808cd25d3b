import http2 from "node:http2";
import type { H2Stream } from "../h2/stream.js";
import { Code, ConnectError } from "@connectrpc/connect";
import { ACCEPTED_ENCODINGS } from "./frames.js";
import { statusTrailers } from "./status.js";
import { literalBlock } from "../h2/hpack.js";

const { NGHTTP2_NO_ERROR, NGHTTP2_CANCEL } = http2.constants;

/**
 * One gRPC call on an HTTP/2 stream, server side: response headers once,
 * length-prefixed messages, then trailers with the status (or a
 * Trailers-Only response when it fails before the first message), and the
 * call's deadline (`grpc-timeout`).
 */
export class GrpcCall {
  private responded = false;
  private finished = false;
  private trailers: Record<string, string> | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  /** The response ended before the request did: stop the client's upload once the status is out. */
  private stopUpload = false;
  /** Set when the call ends (finished by us, or the stream closed under it). */
  private readonly closeCallbacks: Array<(byPeer: boolean) => void> = [];

  constructor(
    readonly stream: H2Stream,
    private readonly contentType: string,
    timeoutHeader: string | undefined,
  ) {
    stream.on("wantTrailers", () => {
      if (this.trailers) stream.sendTrailers(this.trailers);
      else stream.sendTrailersBlock(OK_TRAILERS);
      if (this.stopUpload) this.closeStream(NGHTTP2_NO_ERROR);
    });
    // A stream error (RST by the peer, a dead connection) is the call ending, not a crash.
    stream.on("error", ignore);
    stream.once("close", () => {
      clearTimeout(this.deadlineTimer);
      const byPeer = !this.finished;
      this.finished = true;
      for (const callback of this.closeCallbacks.splice(0)) callback(byPeer);
    });
    const timeoutMs = parseTimeout(timeoutHeader);
    if (timeoutMs !== undefined) {
      this.deadlineTimer = setTimeout(() => this.finish(new ConnectError("the call's deadline passed", Code.DeadlineExceeded)), timeoutMs);
      this.deadlineTimer.unref();
    }
  }

  /** True once the call ended: finished by the handler, or the stream closed. */
  get done(): boolean {
    return this.finished || this.stream.destroyed || this.stream.closed;
  }

  /** `callback(byPeer)` when the stream closes; byPeer: the client went away or cancelled before we finished. */
  onClose(callback: (byPeer: boolean) => void): void {
    if (this.stream.closed || this.stream.destroyed) callback(!this.finished);
    else this.closeCallbacks.push(callback);
  }

  /** Sends response headers now (a streaming call that has nothing to send yet still starts). */
  respond(): void {
    if (this.responded || this.done) return;
    this.responded = true;
    this.stream.respondBlock(responseHeaders(this.contentType), { waitForTrailers: true });
  }

  /**
   * Writes length-prefixed message bytes, or pieces of them in order (one
   * writev); false when the stream's buffer is full (wait for 'drain').
   */
  write(frames: Buffer | readonly Uint8Array[]): boolean {
    if (this.done) return true;
    this.respond();
    if (!Array.isArray(frames)) return this.stream.write(frames);
    this.stream.cork();
    let room = true;
    for (const piece of frames) room = this.stream.write(piece);
    this.stream.uncork();
    return room;
  }

  /**
   * Ends the call with a status: OK without an error, else the error's code,
   * message and details. Before any message it is a Trailers-Only response.
   * Idempotent; nothing happens once the stream is gone.
   */
  finish(error?: unknown): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.deadlineTimer);
    if (this.stream.destroyed || this.stream.closed) return;
    const trailers = error === undefined ? undefined : statusTrailers(error);
    // The client may still be sending (a request refused early): once the
    // response is complete, RST_STREAM(NO_ERROR) tells it to stop (RFC 9113 §8.1).
    const uploading = !this.stream.readableEnded;
    if (uploading) this.stream.resume();
    if (!this.responded) {
      this.responded = true;
      this.stream.respond({ ":status": 200, "content-type": this.contentType, ...(trailers ?? statusTrailers(undefined)) }, { endStream: true });
      if (uploading) this.closeStream(NGHTTP2_NO_ERROR);
    } else {
      this.trailers = trailers;
      this.stopUpload = uploading;
      this.stream.end();
    }
  }

  /** RST_STREAM: when trailers cannot be delivered (a peer that stopped reading), or to stop the client's upload. */
  reset(code = NGHTTP2_CANCEL): void {
    this.finished = true;
    this.closeStream(code);
  }

  private closeStream(code: number): void {
    if (!this.stream.destroyed && !this.stream.closed) this.stream.close(code);
  }
}

/** The header blocks every call sends, encoded once: the response headers by content type, and an OK status. */
const RESPONSE_HEADERS = new Map<string, Buffer>();
function responseHeaders(contentType: string): Buffer {
  let block = RESPONSE_HEADERS.get(contentType);
  if (!block) {
    block = literalBlock([
      [":status", "200"],
      ["content-type", contentType],
      ["grpc-accept-encoding", ACCEPTED_ENCODINGS],
    ]);
    RESPONSE_HEADERS.set(contentType, block);
  }
  return block;
}
const OK_TRAILERS = literalBlock(Object.entries(statusTrailers(undefined)));

/** One listener function for every call's stream errors (not a closure per stream). */
const ignore = () => {};

const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** `grpc-timeout`: up to 8 digits and a unit (H, M, S, m, u, n); undefined when absent or malformed. */
export function parseTimeout(value: string | undefined): number | undefined {
  const match = value ? /^(\d{1,8})([HMSmun])$/.exec(value) : null;
  if (!match) return undefined;
  return Math.max(0, Math.ceil(Number(match[1]) * TIMEOUT_UNITS[match[2]!]!));
}
