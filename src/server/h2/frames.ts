/** HTTP/2 frame types, flags, error codes and settings (RFC 9113 §6, §7). */
export const DATA = 0x0;
export const HEADERS = 0x1;
export const PRIORITY_FRAME = 0x2;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const PUSH_PROMISE = 0x5;
export const PING = 0x6;
export const GOAWAY = 0x7;
export const WINDOW_UPDATE = 0x8;
export const CONTINUATION = 0x9;

export const END_STREAM = 0x1;
export const ACK = 0x1;
export const END_HEADERS = 0x4;
export const PADDED = 0x8;
export const PRIORITY_FLAG = 0x20;

export const NO_ERROR = 0x0;
export const PROTOCOL_ERROR = 0x1;
export const INTERNAL_ERROR = 0x2;
export const FLOW_CONTROL_ERROR = 0x3;
export const STREAM_CLOSED = 0x5;
export const FRAME_SIZE_ERROR = 0x6;
export const REFUSED_STREAM = 0x7;
export const CANCEL = 0x8;
export const COMPRESSION_ERROR = 0x9;
export const ENHANCE_YOUR_CALM = 0xb;

export const SETTINGS_HEADER_TABLE_SIZE = 0x1;
export const SETTINGS_ENABLE_PUSH = 0x2;
export const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
export const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
export const SETTINGS_MAX_FRAME_SIZE = 0x5;
export const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

/** The connection preface a client sends first (RFC 9113 §3.4). */
export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** The largest frame payload either side may send before SETTINGS_MAX_FRAME_SIZE says otherwise. */
export const DEFAULT_MAX_FRAME = 16_384;
/** Every window, connection and stream, before SETTINGS and WINDOW_UPDATE change it. */
export const DEFAULT_WINDOW = 65_535;
export const MAX_WINDOW = 0x7fffffff;

const OUT_CHUNK = 64 * 1024;

/**
 * Where an Output's bytes go: written at once, and true when the writer
 * holds on to nothing (a socket whose write completed synchronously, its
 * writableLength back at 0), so the buffer can be filled again.
 */
export type OutputSink = (bytes: Buffer) => boolean;

/**
 * The frames of one turn of the event loop, written into one buffer: no
 * Buffer per frame, and one socket write per turn (session.ts flushes it).
 *
 * With a `sink`, the buffer is written in place and kept while the socket
 * takes every write at once (the kernel copied the bytes): no allocation and
 * no copy per turn, where a turn copied out (small) or a new 64 KiB buffer
 * (large) made ~800 MB/s of garbage flat out, much of it outside V8's heap,
 * which counts toward its full collections. A turn larger than the buffer
 * goes out in pieces as they fill, instead of into a buffer grown by
 * doubling: a stream that caught up on a window (a subscriber's reader
 * granted 512 KiB back) made turns of up to ~800 KiB, copied at every
 * doubling and written in one call from memory long out of the cache; such
 * writes cost ~3x as much per byte as the usual 48 KiB ones. Without a sink
 * it grows, and take() hands the turn over.
 */
export class Output {
  buf = Buffer.allocUnsafe(OUT_CHUNK);
  length = 0;
  /** Whether the sink took the last write whole (see flush). */
  private inPlace = true;

  constructor(private readonly sink?: OutputSink) {}

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    if (this.sink && this.length > 0) {
      this.flush();
      if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
      return;
    }
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(bigger, 0, 0, this.length);
    this.buf = bigger;
  }

  /**
   * Writes what the buffer holds to the sink. While the sink takes writes
   * whole, from the buffer itself, which is then filled again. Once it keeps
   * one (a TLS socket always does: it completes writes later; a plain one
   * whose kernel buffer is full), as take() does until it takes one whole
   * again: a small turn copied out, a large one handed over. A new 64 KiB
   * buffer for each small turn made a TLS broker's paced fan-out ~40% dearer.
   */
  flush(): void {
    if (this.length === 0) return;
    if (this.inPlace) {
      this.inPlace = this.sink!(this.buf.subarray(0, this.length));
      if (!this.inPlace || this.buf.length !== OUT_CHUNK) this.buf = Buffer.allocUnsafe(OUT_CHUNK);
      this.length = 0;
    } else this.inPlace = this.sink!(this.take());
  }

  /** A frame; without `payload`, its `end - start` bytes are left for the caller at the returned offset. */
  frame(type: number, flags: number, stream: number, payload?: Uint8Array, start = 0, end = payload?.length ?? 0): number {
    const length = end - start;
    this.room(9 + length);
    const b = this.buf;
    const at = this.length;
    b[at] = length >>> 16;
    b[at + 1] = (length >>> 8) & 0xff;
    b[at + 2] = length & 0xff;
    b[at + 3] = type;
    b[at + 4] = flags;
    b.writeUInt32BE(stream, at + 5);
    if (payload) b.set(start === 0 && end === payload.length ? payload : payload.subarray(start, end), at + 9);
    this.length = at + 9 + length;
    return at + 9;
  }

  /** A header block, split into HEADERS and CONTINUATION frames of at most `maxFrame` bytes. */
  headers(stream: number, block: Buffer, endStream: boolean, maxFrame: number): void {
    const flags = endStream ? END_STREAM : 0;
    if (block.length <= maxFrame) return void this.frame(HEADERS, flags | END_HEADERS, stream, block);
    this.frame(HEADERS, flags, stream, block, 0, maxFrame);
    for (let at = maxFrame; at < block.length; at += maxFrame) {
      const end = Math.min(block.length, at + maxFrame);
      this.frame(CONTINUATION, end === block.length ? END_HEADERS : 0, stream, block, at, end);
    }
  }

  u32(type: number, stream: number, value: number): void {
    // frame() first: it may move to a larger buffer, which `this.buf` must then name.
    const at = this.frame(type, 0, stream, undefined, 0, 4);
    this.buf.writeUInt32BE(value, at);
  }

  goaway(lastStream: number, code: number): void {
    const at = this.frame(GOAWAY, 0, 0, undefined, 0, 8);
    this.buf.writeUInt32BE(lastStream, at);
    this.buf.writeUInt32BE(code, at + 4);
  }

  settings(values: ReadonlyArray<readonly [number, number]>): void {
    const at = this.frame(SETTINGS, 0, 0, undefined, 0, values.length * 6);
    values.forEach(([id, value], i) => {
      this.buf.writeUInt16BE(id, at + i * 6);
      this.buf.writeUInt32BE(value, at + i * 6 + 2);
    });
  }

  /** What was written since the last take: a small turn is copied out (the buffer is kept), a large one handed over. */
  take(): Buffer {
    let out: Buffer;
    if (this.length <= OUT_CHUNK / 4) {
      out = Buffer.allocUnsafe(this.length);
      this.buf.copy(out, 0, 0, this.length);
    } else {
      out = this.buf.subarray(0, this.length);
      this.buf = Buffer.allocUnsafe(OUT_CHUNK);
    }
    this.length = 0;
    return out;
  }
}
