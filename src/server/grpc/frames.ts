import { gunzipSync, inflateSync } from "node:zlib";
import { BrokerError } from "../../broker/errors.js";

/**
 * gRPC message framing on HTTP/2 (grpc/PROTOCOL-HTTP2.md): every message is
 * a 1-byte compressed flag, a 4-byte big-endian length, then the bytes.
 */

/** One message as a gRPC length-prefixed message. */
export function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** Several messages as one buffer (one stream write). */
export function frames(messages: Uint8Array[]): Buffer {
  let length = 0;
  for (const m of messages) length += 5 + m.length;
  const out = Buffer.allocUnsafe(length);
  let offset = 0;
  for (const m of messages) {
    out[offset] = 0;
    out.writeUInt32BE(m.length, offset + 1);
    out.set(m, offset + 5);
    offset += 5 + m.length;
  }
  return out;
}

/** Message encodings a request may use (`grpc-encoding`). */
export const ACCEPTED_ENCODINGS = "identity,gzip,deflate";

/**
 * An oversized message up to this size is read to its end and dropped
 * before it is refused; a larger one is refused at its length prefix.
 */
export const MAX_SKIPPED_MESSAGE_BYTES = 64 * 1024 * 1024;

const EMPTY = Buffer.alloc(0);

/**
 * What the gRPC calls of one HTTP/2 connection hold of their requests:
 * messages begun and not complete, and unary requests' messages waiting for
 * the request's end. Each call is held to the size the broker reads, but a
 * connection takes 10,000 calls: without this bound, one client could make
 * the broker hold 10,000 times that. The call whose bytes go over it fails
 * with RESOURCE_EXHAUSTED (REQUEST_TOO_LARGE) and its bytes are dropped;
 * the connection and its other calls go on.
 */
export class RequestBudget {
  held = 0;

  constructor(readonly limitBytes: number) {}

  error(): BrokerError {
    return new BrokerError(
      "resource_exhausted",
      `this connection's calls hold more than ${this.limitBytes} bytes of requests not yet complete; finish or cancel some, or use another connection`,
      { reason: "REQUEST_TOO_LARGE", metadata: { connection_limit_bytes: String(this.limitBytes) } },
    );
  }
}

/**
 * Splits the request body into messages as its chunks arrive. Refuses a
 * message larger than `maxBytes` without buffering it (RESOURCE_EXHAUSTED),
 * and decompresses flagged messages with the request's `grpc-encoding`.
 *
 * An oversized message is refused only once its last byte arrived, its
 * bytes dropped as they come: a Node.js client whose unsent request
 * exceeds its own HTTP/2 session memory (10 MB by default) cannot read any
 * response on that connection (it resets every stream with
 * ENHANCE_YOUR_CALM) until the server has taken those bytes
 * (test/hostile/connections.test.ts).
 */
export class FrameDecoder {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  /** Bytes of an oversized message still to drop, and the error to raise after them. */
  private skipping = 0;
  private skipped: BrokerError | undefined;
  /** Bytes of complete messages its call keeps until the request ends (held()). */
  private kept = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly encoding: string | undefined,
    private readonly budget?: RequestBudget,
  ) {}

  /**
   * The messages completed by this chunk. Throws a BrokerError on a bad or
   * oversized message; refuses the call (the error with the next chunk, or
   * `refused` at the end) when what it buffers takes its connection's calls
   * over their budget.
   */
  push(chunk: Buffer): Uint8Array[] {
    const budget = this.budget;
    if (!budget) return this.decode(chunk);
    const before = this.bufferedBytes;
    let out: Uint8Array[];
    try {
      out = this.decode(chunk);
    } finally {
      budget.held += this.bufferedBytes - before;
    }
    if (this.bufferedBytes > 0 && budget.held > budget.limitBytes) {
      this.refuse(budget.error());
      if (out.length === 0) throw this.skipped!;
    }
    return out;
  }

  /** `bytes` of a complete message the call keeps (a unary request until it ends); false, and nothing kept, when they take the connection over its budget. */
  hold(bytes: number): boolean {
    const budget = this.budget;
    if (!budget) return true;
    if (budget.held + bytes > budget.limitBytes) {
      this.refuse(budget.error());
      return false;
    }
    budget.held += bytes;
    this.kept += bytes;
    return true;
  }

  /** The call is over, or has what it kept: its bytes leave the connection's budget. Idempotent. */
  release(): void {
    if (this.budget) this.budget.held -= this.bufferedBytes + this.kept;
    this.buffered = [];
    this.bufferedBytes = 0;
    this.kept = 0;
  }

  private refuse(error: BrokerError): void {
    this.release();
    this.skipped = error;
    this.skipping = 0;
  }

  private decode(chunk: Buffer): Uint8Array[] {
    if (this.skipped) return this.skip(chunk);
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
    const out: Uint8Array[] = [];
    for (;;) {
      if (this.bufferedBytes < 5) return out;
      // The header is read from the first chunk; chunks are joined only once the
      // message is complete (joining on every chunk copied a 3.6 MB request
      // ~200 times: 250 ms of CPU, issue 10 §1).
      const head = this.buffered[0]!.length >= 5 ? this.buffered[0]! : this.join();
      const length = head.readUInt32BE(1);
      if (length > this.maxBytes) {
        const error = new BrokerError("resource_exhausted", `message of ${length} bytes is larger than the ${this.maxBytes} bytes the broker reads`, {
          reason: "REQUEST_TOO_LARGE",
          metadata: { limit_bytes: String(this.maxBytes) },
        });
        // Dropped as it arrives; one too large to wait for is refused at once.
        this.skipped = error;
        this.skipping = length > MAX_SKIPPED_MESSAGE_BYTES ? 0 : Math.max(0, 5 + length - this.bufferedBytes);
        this.buffered = [];
        this.bufferedBytes = 0;
        // Messages completed before it in this chunk are still handled; the error comes with the next push.
        return out.length > 0 ? out : this.skip(EMPTY);
      }
      const size = 5 + length;
      if (this.bufferedBytes < size) return out;
      let whole: Buffer;
      if (this.buffered.length > 1) whole = this.take(size);
      else {
        whole = this.buffered[0]!;
        this.buffered = whole.length > size ? [whole.subarray(size)] : [];
        this.bufferedBytes -= size;
      }
      const body = whole.subarray(5, size);
      out.push(whole[0] === 1 ? this.decompress(body) : body);
    }
  }

  /** Bytes of an incomplete message still buffered (a body that ended mid-message is malformed). */
  get partialBytes(): number {
    return this.bufferedBytes + this.skipping;
  }

  /** The error of an oversized message being dropped (the body ended before its last byte). */
  get refused(): BrokerError | undefined {
    return this.skipped;
  }

  /** Drops the oversized message's bytes; throws its error once they all arrived. */
  private skip(chunk: Buffer): Uint8Array[] {
    this.skipping = Math.max(0, this.skipping - chunk.length);
    if (this.skipping === 0) throw this.skipped!;
    return [];
  }

  /**
   * The first `size` bytes, copied out of the chunks they span; what
   * follows stays buffered as views (joining the whole chunks copied every
   * byte of a streamed publisher's requests once more).
   */
  private take(size: number): Buffer {
    const whole = Buffer.allocUnsafe(size);
    let offset = 0;
    let i = 0;
    while (offset < size) {
      const chunk = this.buffered[i]!;
      const n = Math.min(chunk.length, size - offset);
      chunk.copy(whole, offset, 0, n);
      offset += n;
      if (n < chunk.length) this.buffered[i] = chunk.subarray(n);
      else i++;
    }
    this.buffered.splice(0, i);
    this.bufferedBytes -= size;
    return whole;
  }

  private join(): Buffer {
    const joined = Buffer.concat(this.buffered, this.bufferedBytes);
    this.buffered = [joined];
    return joined;
  }

  private decompress(body: Buffer): Uint8Array {
    try {
      // maxOutputLength: a small compressed message must not inflate into gigabytes.
      if (this.encoding === "gzip") return gunzipSync(body, { maxOutputLength: this.maxBytes });
      if (this.encoding === "deflate") return inflateSync(body, { maxOutputLength: this.maxBytes });
    } catch (error) {
      const tooLarge = (error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE";
      throw new BrokerError(
        tooLarge ? "resource_exhausted" : "invalid_argument",
        tooLarge ? `decompressed message exceeds the ${this.maxBytes} bytes the broker reads` : `message is not valid ${this.encoding}`,
        { reason: tooLarge ? "REQUEST_TOO_LARGE" : "INVALID_REQUEST" },
      );
    }
    throw new BrokerError("invalid_argument", `compressed message without a supported grpc-encoding (${ACCEPTED_ENCODINGS})`, {
      reason: "INVALID_REQUEST",
    });
  }
}
