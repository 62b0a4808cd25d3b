/**
 * The broker's own HTTP/2 connection (src/server/h2/session.ts) against
 * Node's HTTP/2 client (nghttp2), with an echo handler on its streams:
 * bodies larger than every window in both directions, many streams at once,
 * headers through HPACK's dynamic table and Huffman strings, trailers, PING
 * and SETTINGS, and a reader that stops reading holding the client back.
 */
import http2 from "node:http2";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as F from "../../src/server/h2/frames.js";
import { H2Session } from "../../src/server/h2/session.js";
import type { H2Stream } from "../../src/server/h2/stream.js";
import { RawH2 } from "../support/h2-raw.js";
import { echoCases } from "../support/h2-echo.js";
import { waitUntil } from "../support/wait.js";

const MiB = 1024 * 1024;
let server: net.Server;
let url: string;
/** Streams of /hold, which nobody reads until the test says so. */
const held: H2Stream[] = [];

function echo(stream: H2Stream, headers: http2.IncomingHttpHeaders): void {
  let received = 0;
  stream.respond({ ":status": 200, "content-type": "application/octet-stream" }, { waitForTrailers: true });
  stream.on("wantTrailers", () =>
    stream.sendTrailers({ "x-echo": headers["x-echo"] ?? "", "x-length": String(received), "x-path": headers[":path"] ?? "" }),
  );
  stream.on("data", (chunk: Buffer) => {
    received += chunk.length;
    if (!stream.write(chunk)) {
      stream.pause();
      stream.once("drain", () => stream.resume());
    }
  });
  stream.on("end", () => stream.end());
}

beforeAll(async () => {
  server = net.createServer(
    (socket) =>
      new H2Session(socket, {
        windowBytes: MiB,
        maxConcurrentStreams: 1000,
        maxHeaderListBytes: 64 * 1024,
        onStream(stream, headers) {
          if (headers[":path"] === "/hold") held.push(stream);
          else echo(stream, headers);
        },
      }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("the broker's HTTP/2 connection", () => {
  echoCases(() => url);

  it("grants a stream only what its reader took: a reader that stops holds the client to one window", async () => {
    const session = http2.connect(url);
    try {
      const request = session.request({ ":method": "POST", ":path": "/hold" });
      request.on("error", () => {});
      const chunk = Buffer.alloc(16_384, 7);
      let written = 0;
      const writeMore = () => {
        while (written < 4 * MiB && request.write(chunk)) written += chunk.length;
      };
      request.on("drain", () => {
        written += chunk.length;
        writeMore();
      });
      writeMore();
      await waitUntil(() => held.length === 1 && held[0]!.readableLength >= MiB - 16_384, "the first window's bytes arrived", 5000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const stream = held[0]!;
      // Nothing was read: the server holds at most the one window it granted.
      expect(stream.readableLength).toBeLessThanOrEqual(MiB);
      // Once read, the rest flows: every byte of 4 MiB arrives.
      let read = 0;
      stream.on("data", (c: Buffer) => (read += c.length));
      await waitUntil(() => read >= 4 * MiB - 16_384 * 4 && written >= 4 * MiB, "the rest read", 10_000);
      request.close();
    } finally {
      session.close();
    }
  });

  it("refuses DATA beyond the window it granted with FLOW_CONTROL_ERROR on that stream, and goes on", async () => {
    const client = await RawH2.connect((server.address() as net.AddressInfo).port);
    try {
      client.headers(1, [[":method", "POST"], [":scheme", "http"], [":path", "/hold"], [":authority", "x"]]);
      // Nobody reads /hold: 1 MiB is all it may take before a WINDOW_UPDATE.
      const chunk = Buffer.alloc(16_384);
      for (let sent = 0; sent <= MiB; sent += chunk.length) client.send(F.DATA, 0, 1, chunk);
      await waitUntil(() => client.resetCodes(1).length > 0, "stream 1 refused", 5000);
      expect(client.resetCodes(1)).toEqual([F.FLOW_CONTROL_ERROR]);
      client.headers(3, [[":method", "POST"], [":scheme", "http"], [":path", "/echo"], [":authority", "x"]], F.END_HEADERS | F.END_STREAM);
      await waitUntil(() => client.received(F.HEADERS, 3).length > 0, "an answer on stream 3", 5000);
      expect(client.goawayCode()).toBeUndefined();
    } finally {
      client.destroy();
    }
  });

  it("gives the connection's window back with its next write, and alone only once a quarter of the window is owed", async () => {
    const client = await RawH2.connect((server.address() as net.AddressInfo).port);
    const grants = () => client.received(F.WINDOW_UPDATE, 0).map((f) => f.payload.readUInt32BE(0) & 0x7fffffff);
    try {
      const heldBefore = held.length;
      client.headers(1, [[":method", "POST"], [":scheme", "http"], [":path", "/hold"], [":authority", "x"]]);
      await waitUntil(() => held.length === heldBefore + 1, "the stream arrived", 5000);
      const stream = held[heldBefore]!;
      const atStart = grants().length; // the one that opened the window to 1 MiB
      // Five reads of 16 KiB, one at a time: each used to be answered by a WINDOW_UPDATE of its own.
      const chunk = Buffer.alloc(16_384, 1);
      for (let k = 1; k <= 5; k++) {
        client.send(F.DATA, 0, 1, chunk);
        await waitUntil(() => stream.readableLength === k * chunk.length, `read ${k} arrived`, 5000);
      }
      expect(grants().slice(atStart)).toEqual([]);
      // The next thing the broker writes (a PING's answer) carries it, all in one.
      client.send(F.PING, 0, 0, Buffer.alloc(8));
      await waitUntil(() => client.received(F.PING, 0).length > 0, "the PING answered", 5000);
      expect(grants().slice(atStart)).toEqual([5 * chunk.length]);
      // A quarter of the window owed (256 KiB) goes back without waiting for anything else.
      for (let k = 0; k < 16; k++) client.send(F.DATA, 0, 1, chunk);
      await waitUntil(() => grants().length === atStart + 2, "a WINDOW_UPDATE alone", 5000);
      expect(grants().slice(atStart)).toEqual([5 * chunk.length, 16 * chunk.length]);
      expect(client.goawayCode()).toBeUndefined();
    } finally {
      client.destroy();
    }
  });
});
