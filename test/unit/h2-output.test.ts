import assert from "node:assert/strict";
import { describe, it } from "vitest";
import * as F from "../../src/server/h2/frames.js";

/** The frames of an HTTP/2 connection's turn, as the socket gets them (src/server/h2/frames.ts Output). */
describe("Output", () => {
  /** Every frame of `bytes`: [type, stream, payload]. */
  const parse = (bytes: Buffer) => {
    const frames: Array<[number, number, Buffer]> = [];
    for (let at = 0; at < bytes.length; ) {
      const length = bytes.readUIntBE(at, 3);
      frames.push([bytes[at + 3]!, bytes.readUInt32BE(at + 5), bytes.subarray(at + 9, at + 9 + length)]);
      at += 9 + length;
    }
    return frames;
  };

  it("writes a control frame that does not fit the buffer's rest into the larger one it moves to", () => {
    const out = new F.Output();
    // 5 bytes left in the 64 KiB buffer: the WINDOW_UPDATE (13) needs a larger one.
    const data = Buffer.alloc(64 * 1024 - 9 - 5, 7);
    out.frame(F.DATA, 0, 1, data);
    out.u32(F.WINDOW_UPDATE, 0, 123_456);
    const frames = parse(out.take());
    assert.deepEqual(frames.map(([type, stream, payload]) => [type, stream, payload.length]), [[F.DATA, 1, data.length], [F.WINDOW_UPDATE, 0, 4]]);
    assert.equal(frames[1]![2].readUInt32BE(0), 123_456);
    assert.ok(frames[0]![2].equals(data));
  });
});
