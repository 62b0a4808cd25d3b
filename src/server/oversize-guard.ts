import type { H2Stream } from "./h2/stream.js";
import { MAX_SKIPPED_MESSAGE_BYTES } from "./grpc/frames.js";

/** Binary enveloped request bodies: gRPC and gRPC-Web (any codec; not gRPC-Web's base64 text), Connect streaming. */
const ENVELOPED = /^application\/(grpc|grpc-web|connect)(\+|;|$)/;

/** True for the content types whose request bodies are length-prefixed messages. */
export function isEnveloped(contentType: string | undefined): boolean {
  return contentType !== undefined && ENVELOPED.test(contentType);
}

/**
 * connect-node refuses an enveloped message larger than readMaxBytes at its
 * length prefix and answers at once. On HTTP/2 a Node.js client still
 * holding the rest of that message unsent (more than its own session
 * memory, 10 MB by default) cannot read that answer, nor any other on the
 * connection, and resets them all with ENHANCE_YOUR_CALM; the gRPC fast
 * path avoids it by dropping the message first (grpc/frames.ts). This does
 * the same in front of connect-node: the prefix of an oversized message is
 * held back while its bytes are dropped as they arrive, then handed on, so
 * connect-node refuses it (RESOURCE_EXHAUSTED) only once the client has
 * sent it all. What follows the refused message passes through untouched.
 */
export function holdOversizedEnvelopes(stream: H2Stream, maxBytes: number): void {
  const push = stream.push.bind(stream);
  let header = Buffer.alloc(0);
  /** Bytes of the current message to pass on. */
  let passing = 0;
  /** Bytes of an oversized message still to drop, and its prefix to hand on after them. */
  let dropping = 0;
  let held: Buffer | undefined;
  let done = false;
  /** What of `chunk` connect-node gets to read. */
  const filter = (chunk: Buffer): Buffer | undefined => {
    if (done) return chunk;
    const out: Buffer[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (dropping > 0) {
        const n = Math.min(dropping, chunk.length - i);
        dropping -= n;
        i += n;
        if (dropping === 0) {
          out.push(held!, chunk.subarray(i));
          held = undefined;
          done = true;
          break;
        }
      } else if (passing > 0) {
        const n = Math.min(passing, chunk.length - i);
        out.push(chunk.subarray(i, i + n));
        passing -= n;
        i += n;
      } else {
        const take = chunk.subarray(i, i + 5 - header.length);
        header = Buffer.concat([header, take]);
        i += take.length;
        if (header.length < 5) break;
        const length = header.readUInt32BE(1);
        if (length > maxBytes && length <= MAX_SKIPPED_MESSAGE_BYTES) {
          held = header;
          dropping = length;
        } else {
          out.push(header);
          passing = length;
        }
        header = Buffer.alloc(0);
      }
    }
    if (out.length === 0) return undefined;
    return out.length === 1 ? out[0] : Buffer.concat(out);
  };
  stream.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (!Buffer.isBuffer(chunk)) {
      // The end of the body: a message cut short is refused as oversized all the same.
      if (chunk === null && held) push(held);
      held = undefined;
      return push(chunk, encoding);
    }
    const passed = filter(chunk);
    return passed ? push(passed) : true;
  };
  // DATA that came with the request's HEADERS is already buffered (the 'stream' event comes after it).
  if (stream.readableLength > 0) {
    const buffered: Buffer[] = [];
    for (let chunk: Buffer | null; (chunk = stream.read() as Buffer | null) !== null; ) buffered.push(chunk);
    const passed = filter(Buffer.concat(buffered));
    if (passed) stream.unshift(passed);
  }
}
