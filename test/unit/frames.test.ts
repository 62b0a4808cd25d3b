import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { FrameDecoder, frames } from "../../src/server/grpc/frames.js";

/** The gRPC fast path's framing of request bodies as chunks arrive. */
describe("FrameDecoder", () => {
  const message = (n: number, fill: number) => new Uint8Array(n).fill(fill);

  it("decodes messages split anywhere across chunks, the header included", () => {
    const body = frames([message(3 * 1024 * 1024, 7), message(10, 8), message(0, 0), message(70_000, 9)]);
    for (const sizes of [[1, 2, 3, 16 * 1024], [4, 5, 6], [16 * 1024], [body.length]]) {
      const decoder = new FrameDecoder(4 * 1024 * 1024, undefined);
      const out: Uint8Array[] = [];
      for (let offset = 0, i = 0; offset < body.length; i++) {
        const size = sizes[Math.min(i, sizes.length - 1)]!;
        out.push(...decoder.push(body.subarray(offset, offset + size)));
        offset += size;
      }
      assert.deepEqual(out.map((m) => [m.length, m[0]]), [[3 * 1024 * 1024, 7], [10, 8], [0, undefined], [70_000, 9]], String(sizes));
      assert.equal(decoder.partialBytes, 0);
    }
  });

  it("hands over every byte of many small messages whose boundaries fall anywhere in the chunks", () => {
    // Messages of 0..299 bytes, each byte telling its message and place: a byte taken from the wrong chunk shows.
    const messages = Array.from({ length: 400 }, (_, k) => Uint8Array.from({ length: (k * 37) % 300 }, (_, i) => (k * 7 + i) % 251));
    const body = frames(messages);
    for (const size of [1, 3, 5, 6, 64, 333, 4096, 16 * 1024]) {
      const decoder = new FrameDecoder(1024, undefined);
      const out: Uint8Array[] = [];
      for (let offset = 0; offset < body.length; offset += size) out.push(...decoder.push(body.subarray(offset, offset + size)));
      assert.equal(out.length, messages.length, `chunks of ${size}`);
      out.forEach((m, k) => assert.ok(Buffer.from(m).equals(messages[k]!), `message ${k}, chunks of ${size}`));
      assert.equal(decoder.partialBytes, 0);
    }
  });

  it("refuses a message over the limit without buffering it, once its last byte arrived", () => {
    const decoder = new FrameDecoder(1000, undefined);
    const body = frames([message(1001, 1)]);
    assert.deepEqual(decoder.push(body.subarray(0, 5)), [], "the header alone: dropped, not refused yet");
    assert.equal(decoder.refused?.reason, "REQUEST_TOO_LARGE");
    assert.deepEqual(decoder.push(body.subarray(5, 500)), []);
    assert.throws(() => decoder.push(body.subarray(500)), /larger than the 1000 bytes/);
  });
});
