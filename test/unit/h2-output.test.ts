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
  it("with a sink, hands a large turn over in pieces of at most 64 KiB, in order, every byte kept", () => {
    const pieces: Buffer[] = [];
    // The sink keeps every piece (a socket that could not write them yet): each gets a buffer of its own.
    const out = new F.Output((piece) => (pieces.push(piece), false));
    // 100 DATA frames of 0-9,900 bytes (~500 KiB): a subscriber's stream catching up on a window.
    const sent = Array.from({ length: 100 }, (_, i) => Buffer.alloc(i * 100, i));
    sent.forEach((data, i) => {
      out.frame(F.DATA, 0, 1 + 2 * (i % 3), data);
      if (i % 10 === 0) out.u32(F.WINDOW_UPDATE, 0, i + 1);
    });
    out.flush();
    assert.ok(pieces.length >= 8, `${pieces.length} pieces`);
    for (const piece of pieces) assert.ok(piece.length <= 64 * 1024, `a piece of ${piece.length} bytes`);
    // Frames never straddle two pieces, and come out in the order they were written.
    const frames = pieces.flatMap(parse);
    const data = frames.filter(([type]) => type === F.DATA);
    assert.deepEqual(data.map(([, stream]) => stream), sent.map((_, i) => 1 + 2 * (i % 3)));
    data.forEach(([, , payload], i) => assert.ok(payload.equals(sent[i]!), `frame ${i}`));
    const grants = frames.filter(([type]) => type === F.WINDOW_UPDATE).map(([, , payload]) => payload.readUInt32BE(0));
    assert.deepEqual(grants, [1, 11, 21, 31, 41, 51, 61, 71, 81, 91]);
  });

  it("with a sink, gives a frame larger than 64 KiB a buffer of its own", () => {
    const pieces: Buffer[] = [];
    const out = new F.Output((piece) => (pieces.push(piece), false));
    out.frame(F.DATA, 0, 1, Buffer.alloc(100, 1));
    const big = Buffer.alloc(100_000, 2);
    out.frame(F.DATA, 0, 3, big);
    out.flush();
    assert.deepEqual(pieces.map((p) => p.length), [109, 100_009]);
    assert.ok(parse(pieces[1]!)[0]![2].equals(big));
  });

  it("with a sink that takes every write whole, fills the same buffer again, and a write it keeps is never overwritten", () => {
    const written: Buffer[] = [];
    const buffers = new Set<ArrayBufferLike>();
    const firstBuffers = new Set<ArrayBufferLike>();
    let keep = false;
    const kept: Array<{ bytes: Buffer; copy: Buffer }> = [];
    const out = new F.Output((bytes) => {
      buffers.add(bytes.buffer);
      if (kept.length === 0 && !keep) firstBuffers.add(bytes.buffer);
      written.push(Buffer.from(bytes)); // what the kernel got, copied at the write
      if (keep) kept.push({ bytes, copy: Buffer.from(bytes) });
      return !keep;
    });
    const sent: Buffer[] = [];
    for (let turn = 0; turn < 50; turn++) {
      keep = turn % 10 === 9; // now and then the socket keeps a write (its buffer was full)
      for (let i = 0; i < 1 + (turn % 4) * 60; i++) {
        const data = Buffer.alloc((turn * 7 + i) % 1500, turn + i);
        sent.push(data);
        out.frame(F.DATA, 0, 1, data);
      }
      out.flush();
    }
    const frames = written.flatMap(parse);
    assert.equal(frames.length, sent.length);
    frames.forEach(([, , payload], i) => assert.ok(payload.equals(sent[i]!), `frame ${i}`));
    // Kept writes still hold their bytes after everything written since.
    assert.ok(kept.length > 0);
    for (const { bytes, copy } of kept) assert.ok(bytes.equals(copy));
    // Until the first kept write (turn 9), every write came from the one buffer.
    assert.equal(firstBuffers.size, 1, `${firstBuffers.size} buffers before the socket kept a write`);
    // A kept write costs a new buffer, and the write after it is a copy (or a handover and a new buffer).
    assert.ok(buffers.size <= 1 + 3 * kept.length, `${buffers.size} buffers for ${written.length} writes, ${kept.length} kept`);
  });

  it("with a sink that keeps every write (a TLS socket), copies small turns out and fills its one buffer again", () => {
    const written: Array<{ bytes: Buffer; copy: Buffer }> = [];
    const out = new F.Output((bytes) => (written.push({ bytes, copy: Buffer.from(bytes) }), false));
    const buffers = new Set<Buffer>();
    for (let turn = 0; turn < 20; turn++) {
      out.frame(F.DATA, 0, 1, Buffer.alloc(300 + turn, turn));
      out.flush();
      buffers.add(out.buf);
    }
    // The first write went from the buffer itself and was kept: a new buffer, then copies of each turn.
    assert.equal(buffers.size, 1);
    written.forEach(({ bytes, copy }, turn) => {
      assert.ok(bytes.equals(copy), `turn ${turn} overwritten`);
      assert.equal(bytes.length, 9 + 300 + turn);
    });
  });
});
