import * as F from "./frames.js";

/** What a FrameReader hands its connection. */
export interface FrameSink {
  /** One whole frame: its payload is buf[start, end) (a view, valid until the handler returns unless copied or kept). */
  frame(buf: Buffer, type: number, flags: number, id: number, start: number, end: number): void;
  /** The connection must end with this error code (RFC 9113 §5.4.1). */
  fail(code: number): void;
  /** The client did not open with the HTTP/2 preface. */
  badPreface(): void;
  /** True once the connection is gone: reading stops. */
  readonly destroyed: boolean;
}

/**
 * Turns a server connection's socket chunks into frames: the client's
 * preface first, then 9-byte headers and payloads, a frame split across
 * chunks held until its last byte arrives. Frames are handed over as views
 * of the chunk they arrived in; only a frame split across chunks is copied
 * (copying whole 64 KiB reads was ~6% of the broker's CPU in streamed
 * ingest).
 */
export class FrameReader {
  private pending: Buffer | undefined;
  private preface: boolean;

  /** `expectPreface`: a server's reader (a client's, bench/lib/h2-framer.ts, reads frames from the first byte). */
  constructor(
    private readonly sink: FrameSink,
    expectPreface = true,
  ) {
    this.preface = !expectPreface;
  }

  read(chunk: Buffer): void {
    const sink = this.sink;
    if (sink.destroyed) return;
    let buf = chunk;
    let at = 0;
    const pending = this.pending;
    if (pending) {
      this.pending = undefined;
      const cut = this.preface ? splitFrameEnd(pending, chunk) : 0;
      if (cut === 0) buf = Buffer.concat([pending, chunk]);
      else {
        this.frames(Buffer.concat([pending, chunk.subarray(0, cut)]), 0);
        if (sink.destroyed) return;
        at = cut;
      }
    }
    if (!this.preface) {
      const n = Math.min(buf.length, F.PREFACE.length);
      if (!buf.subarray(0, n).equals(F.PREFACE.subarray(0, n))) return sink.badPreface();
      if (buf.length < F.PREFACE.length) return void (this.pending = buf);
      this.preface = true;
      at = F.PREFACE.length;
    }
    at = this.frames(buf, at);
    if (!sink.destroyed && at < buf.length) this.pending = buf.subarray(at);
  }

  /** Hands over the whole frames in `buf` from `at`; returns where the first incomplete one starts. */
  private frames(buf: Buffer, at: number): number {
    const sink = this.sink;
    while (buf.length - at >= 9 && !sink.destroyed) {
      const length = buf.readUIntBE(at, 3);
      if (length > F.DEFAULT_MAX_FRAME) {
        sink.fail(F.FRAME_SIZE_ERROR);
        break;
      }
      if (buf.length - at < 9 + length) break;
      sink.frame(buf, buf[at + 3]!, buf[at + 4]!, buf.readUInt32BE(at + 5) & 0x7fffffff, at + 9, at + 9 + length);
      at += 9 + length;
    }
    return at;
  }
}

/**
 * How many bytes of `chunk` complete the frame that `pending` (the start of
 * a frame) began, or 0 when the chunk does not complete it.
 */
function splitFrameEnd(pending: Buffer, chunk: Buffer): number {
  if (pending.length + chunk.length < 9) return 0;
  const byte = (i: number) => (i < pending.length ? pending[i]! : chunk[i - pending.length]!);
  const end = 9 + ((byte(0) << 16) | (byte(1) << 8) | byte(2)) - pending.length;
  return end <= chunk.length ? end : 0;
}
