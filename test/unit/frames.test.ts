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

  it("refuses a message over the limit from its header, before buffering it", () => {
    const decoder = new FrameDecoder(1000, undefined);
    assert.throws(() => decoder.push(frames([message(1001, 1)]).subarray(0, 5)), /larger than the 1000 bytes/);
  });
});
