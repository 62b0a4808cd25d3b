import assert from "node:assert/strict";
import net from "node:net";
import { describe, test } from "vitest";
import * as F from "../../src/server/h2/frames.js";
import { literalBlock } from "../../src/server/h2/hpack.js";
import { clientFor } from "../support/broker.js";
import { brokerForRawClients, grpcRequest, type RawH2 } from "../support/h2-raw.js";
import { waitUntil } from "../support/wait.js";

/**
 * Frames a well-behaved client never sends, at the broker's own HTTP/2
 * connection (src/server/h2/session.ts): each is refused with the error
 * RFC 9113 names (on the stream, or GOAWAY for the connection), the broker
 * does not crash, and a client on another connection is served throughout.
 */

const fixture = brokerForRawClients();
const connect = (preface = true) => fixture.connect(preface);

/** Another client, on its own connection, publishes and is answered. */
async function assertOthersServed(): Promise<void> {
  const other = clientFor(fixture.broker.url, "bystander");
  const { sequence } = await other.publish("h2-bystanders", "still here");
  assert.ok(sequence > 0n);
}

function drainedOrClosed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off("drain", done).off("close", done);
      resolve();
    };
    socket.on("drain", done).on("close", done);
  });
}

const goaway = async (client: RawH2, code: number, what: string) => {
  await waitUntil(() => client.goawayCode() !== undefined && client.closed, `GOAWAY (${what}) and the connection closed`, 5000);
  assert.equal(client.goawayCode(), code, what);
};

describe("the broker's HTTP/2 connection against malformed frames", () => {
  test("a connection that does not start with the HTTP/2 preface is closed", async () => {
    const client = await connect(false);
    client.socket.write("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n");
    await waitUntil(() => client.closed, "the connection closed", 5000);
    await assertOthersServed();
  });

  test("a frame over the 16 KiB it may send is a FRAME_SIZE_ERROR", async () => {
    const client = await connect();
    client.send(F.PING, 0, 0, Buffer.alloc(20_000));
    await goaway(client, F.FRAME_SIZE_ERROR, "an oversized frame");
    await assertOthersServed();
  });

  test("a header block that never ends (a CONTINUATION flood) is cut off at twice the header list limit", async () => {
    const client = await connect();
    client.headers(1, grpcRequest(), 0); // no END_HEADERS
    const filler = Buffer.alloc(16_000, 0x41);
    for (let i = 0; i < 20; i++) client.send(F.CONTINUATION, 0, 1, filler);
    await goaway(client, F.ENHANCE_YOUR_CALM, "CONTINUATION flood");
    await assertOthersServed();
  });

  test("bytes that are no HPACK are a COMPRESSION_ERROR", async () => {
    const client = await connect();
    client.send(F.HEADERS, F.END_HEADERS, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    await goaway(client, F.COMPRESSION_ERROR, "a broken header block");
    await assertOthersServed();
  });

  test("thousands of streams opened and reset at once (rapid reset) end the connection with ENHANCE_YOUR_CALM", async () => {
    const client = await connect();
    for (let id = 1; id < 2 * 3000; id += 2) {
      client.headers(id, grpcRequest("/seqcast.v1.PubSubService/Subscribe"));
      client.send(F.RST_STREAM, 0, id, Buffer.from([0, 0, 0, F.CANCEL]));
    }
    await goaway(client, F.ENHANCE_YOUR_CALM, "rapid reset");
    await assertOthersServed();
  });

  test("a malformed request is refused on its stream (PROTOCOL_ERROR); the connection goes on", async () => {
    const client = await connect();
    client.headers(1, [["X-Upper", "1"], ...grpcRequest()]);
    client.headers(3, grpcRequest().filter(([name]) => name !== ":path"));
    client.headers(5, [...grpcRequest(), ["connection", "keep-alive"]]);
    await waitUntil(() => [1, 3, 5].every((id) => client.resetCodes(id).length > 0), "three resets", 5000);
    for (const id of [1, 3, 5]) assert.deepEqual(client.resetCodes(id), [F.PROTOCOL_ERROR], `stream ${id}`);
    // The same connection still takes a well-formed call: an unauthenticated Publish is answered, not reset.
    client.headers(7, grpcRequest(), F.END_HEADERS | F.END_STREAM);
    await waitUntil(() => client.received(F.HEADERS, 7).length > 0, "the answer on stream 7", 5000);
    assert.equal(client.goawayCode(), undefined);
  });

  test("a request header list over 64 KiB is refused on its stream (ENHANCE_YOUR_CALM); the connection goes on", async () => {
    const client = await connect();
    // Five fields of 14,000 bytes, 70 KB: more than one frame holds, so HEADERS and CONTINUATIONs.
    const big: Array<[string, string]> = Array.from({ length: 5 }, (_, i) => [`x-big-${i}`, "z".repeat(14_000)]);
    const block = literalBlock([...grpcRequest(), ...big]);
    client.send(F.HEADERS, 0, 1, block.subarray(0, 16_000));
    for (let at = 16_000; at < block.length; at += 16_000) {
      const end = Math.min(block.length, at + 16_000);
      client.send(F.CONTINUATION, end === block.length ? F.END_HEADERS : 0, 1, block.subarray(at, end));
    }
    await waitUntil(() => client.resetCodes(1).length > 0, "stream 1 refused", 5000);
    assert.deepEqual(client.resetCodes(1), [F.ENHANCE_YOUR_CALM]);
    client.headers(3, grpcRequest(), F.END_HEADERS | F.END_STREAM);
    await waitUntil(() => client.received(F.HEADERS, 3).length > 0, "the answer on stream 3", 5000);
    assert.equal(client.goawayCode(), undefined);
  });

  test("a client that floods PINGs and reads nothing is cut off before its answers pile up", async () => {
    const socket = net.connect(fixture.broker.port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    const settings = new F.Output();
    settings.frame(F.SETTINGS, 0, 0);
    socket.write(Buffer.concat([F.PREFACE, settings.take()]));
    // Read nothing while flooding: the answers (17 bytes for each 17-byte PING) can only pile up in the broker.
    socket.pause();
    let closed = false;
    socket.on("error", () => {});
    socket.once("close", () => (closed = true));
    const ping = new F.Output();
    for (let i = 0; i < 4096; i++) ping.frame(F.PING, 0, 0, Buffer.alloc(8));
    const burst = ping.take();
    let sent = 0;
    while (sent < 64 * 1024 * 1024 && !closed && !socket.destroyed) {
      sent += burst.length;
      if (!socket.write(burst)) await drainedOrClosed(socket);
    }
    // Now read: what the broker kept for this connection arrives, then the end of the connection.
    let received = 0;
    socket.on("data", (chunk: Buffer) => (received += chunk.length));
    socket.resume();
    await waitUntil(() => closed, "the flooding connection closed", 20_000);
    assert.ok(received < sent / 2, `answered ${received} of ${sent} bytes of PINGs`);
    await assertOthersServed();
  });
});
