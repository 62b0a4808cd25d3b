import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { FrameReader } from "../../src/server/h2/frame-reader.js";
import * as F from "../../src/server/h2/frames.js";

/** A frame as it goes on the wire. */
function wire(type: number, flags: number, id: number, payload: Uint8Array): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(id, 5);
  return Buffer.concat([head, payload]);
}

/** Feeds `bytes` to a reader in chunks of `size`; returns what it handed over. */
function readAll(bytes: Buffer, size: number) {
  const got = { frames: [] as Array<{ type: number; flags: number; id: number; payload: Buffer }>, failed: [] as number[], badPreface: 0 };
  const sink = {
    destroyed: false,
    frame: (buf: Buffer, type: number, flags: number, id: number, start: number, end: number) =>
      got.frames.push({ type, flags, id, payload: Buffer.from(buf.subarray(start, end)) }),
    fail: (code: number) => {
      got.failed.push(code);
      sink.destroyed = true;
    },
    badPreface: () => {
      got.badPreface++;
      sink.destroyed = true;
    },
  };
  const reader = new FrameReader(sink);
  for (let offset = 0; offset < bytes.length; offset += size) reader.read(bytes.subarray(offset, offset + size));
  return got;
}

/** The server's splitting of a connection's bytes into frames. */
describe("FrameReader", () => {
  // Payloads of 0..16,384 bytes whose every byte tells its frame and place.
  const sent = Array.from({ length: 60 }, (_, k) => ({
    type: k % 2 === 0 ? F.DATA : F.HEADERS,
    flags: k % 3,
    id: 2 * k + 1,
    payload: Buffer.from(Uint8Array.from({ length: k === 59 ? F.DEFAULT_MAX_FRAME : (k * 613) % 5000 }, (_, i) => (k * 11 + i) % 253)),
  }));
  const bytes = Buffer.concat([F.PREFACE, ...sent.map((f) => wire(f.type, f.flags, f.id, f.payload))]);

  it("hands over every frame whole and in order, however the socket cut the bytes", () => {
    for (const size of [1, 2, 9, 10, 24, 25, 1000, 16 * 1024 + 9, 65536, bytes.length]) {
      const got = readAll(bytes, size);
      assert.deepEqual(got.failed, [], `chunks of ${size}`);
      assert.equal(got.frames.length, sent.length, `chunks of ${size}`);
      got.frames.forEach((f, k) => {
        const want = sent[k]!;
        assert.deepEqual([f.type, f.flags, f.id], [want.type, want.flags, want.id], `frame ${k}, chunks of ${size}`);
        assert.ok(f.payload.equals(want.payload), `payload of frame ${k}, chunks of ${size}`);
      });
    }
  });

  it("ends the connection with FRAME_SIZE_ERROR at a frame over 16 KiB, after the frames before it", () => {
    const oversized = Buffer.concat([F.PREFACE, wire(F.DATA, 0, 1, Buffer.alloc(10)), wire(F.DATA, 0, 3, Buffer.alloc(F.DEFAULT_MAX_FRAME + 1))]);
    for (const size of [1, 30, oversized.length]) {
      const got = readAll(oversized, size);
      assert.equal(got.frames.length, 1);
      assert.deepEqual(got.failed, [F.FRAME_SIZE_ERROR]);
    }
  });

  it("refuses a connection that does not open with the preface", () => {
    const bad = Buffer.concat([Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), wire(F.DATA, 0, 1, Buffer.alloc(4))]);
    for (const size of [1, 5, bad.length]) {
      const got = readAll(bad, size);
      assert.equal(got.badPreface, 1);
      assert.equal(got.frames.length, 0);
    }
  });
});
