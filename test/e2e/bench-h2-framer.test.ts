/**
 * The bench's hand-written HTTP/2 connection (bench/lib/h2-framer.ts), the
 * floor that measures node:http2, against Node's HTTP/2 client (nghttp2):
 * bodies larger than every window in both directions, many streams at once,
 * headers through HPACK's dynamic table and Huffman strings. A measuring
 * stick that mangled a frame would measure nothing.
 */
import http2 from "node:http2";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, LeanPublishStream, subscribe } from "../../bench/lean-client.js";
import { FramerConnection, responseBlock, trailersBlock } from "../../bench/lib/h2-framer.js";
import { literalBlock } from "../../src/server/h2/hpack.js";
import { startBroker } from "../support/broker.js";
import { echoCases } from "../support/h2-echo.js";
import { testToken } from "../support/tokens.js";
import { waitUntil } from "../support/wait.js";

let server: net.Server;
let url: string;

beforeAll(async () => {
  // /echo: the body back, then trailers with the request's x-echo header and the body's length.
  server = net.createServer((socket) =>
    new FramerConnection(socket, (stream) => {
      let received = 0;
      stream.respond(responseBlock("application/octet-stream"));
      stream.onData = (chunk) => {
        received += chunk.length;
        stream.write(chunk);
      };
      stream.onEnd = () => stream.end(trailersBlock({ "x-echo": stream.headers["x-echo"] ?? "", "x-length": String(received), "x-path": stream.headers[":path"] ?? "" }));
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("bench/lib/h2-framer.ts", () => {
  echoCases(() => url);
});

/**
 * The same connection as the load generator's client (bench/lean-client.ts):
 * against Node's HTTP/2 server (nghttp2: 64 KiB windows, its dynamic table
 * and Huffman strings in responses), then against the broker itself.
 */
describe("bench/lib/h2-framer.ts as a client", () => {
  let echo: http2.Http2Server;
  let echoUrl: URL;
  beforeAll(async () => {
    echo = http2.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const body = Buffer.concat(chunks);
        response.addTrailers({ "x-length": String(body.length), "x-echo": String(request.headers["x-echo"]) });
        response.writeHead(200, { "content-type": "application/octet-stream", "x-path": request.url });
        response.end(body);
      });
    });
    await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
    echoUrl = new URL(`http://127.0.0.1:${(echo.address() as net.AddressInfo).port}`);
  });
  afterAll(() => new Promise<void>((resolve) => echo.close(() => resolve())));

  function exchange(connection: FramerConnection, path: string, header: string, body: Buffer) {
    return new Promise<{ headers: Record<string, string>; trailers: Record<string, string>; body: Buffer }>((resolve, reject) => {
      const stream = connection.request(literalBlock([[":method", "POST"], [":scheme", "http"], [":authority", echoUrl.host], [":path", path], ["x-echo", header]]));
      const chunks: Buffer[] = [];
      let headers: Record<string, string> = {};
      let trailers: Record<string, string> = {};
      stream.onHeaders = (fields, endStream) => (endStream ? (trailers = fields) : (headers = fields));
      stream.onData = (chunk) => chunks.push(Buffer.from(chunk));
      stream.onEnd = () => resolve({ headers, trailers, body: Buffer.concat(chunks) });
      stream.onClose = () => reject(new Error(`stream ${stream.id} closed before its end (reset ${stream.resetCode})`));
      for (let at = 0; at < body.length; at += 16_384) stream.write(body.subarray(at, at + 16_384));
      stream.endRequest();
    });
  }

  it("sends and receives bodies larger than both sides' windows, byte for byte", async () => {
    const connection = new FramerConnection(net.connect(Number(echoUrl.port), "127.0.0.1"), () => {}, "client");
    try {
      // 3 MiB: beyond Node's 64 KiB windows (the client must wait for WINDOW_UPDATEs) and the 1 MiB the client grants.
      const body = Buffer.alloc(3 * 1024 * 1024);
      for (let i = 0; i < body.length; i++) body[i] = (i * 31 + (i >> 11)) & 0xff;
      const result = await exchange(connection, "/big", "big", body);
      expect(result.headers[":status"]).toBe("200");
      expect(result.trailers["x-length"]).toBe(String(body.length));
      expect(result.body.equals(body)).toBe(true);
    } finally {
      connection.destroy();
    }
  });

  it("keeps 100 concurrent streams apart, through the server's dynamic table and Huffman strings", async () => {
    const connection = new FramerConnection(net.connect(Number(echoUrl.port), "127.0.0.1"), () => {}, "client");
    try {
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => exchange(connection, `/echo/${i}`, `h${i}-${"y".repeat(i)}`, Buffer.from(`body ${i} `.repeat(i + 1)))));
      results.forEach((result, i) => {
        expect(result.headers["x-path"]).toBe(`/echo/${i}`);
        expect(result.trailers["x-echo"]).toBe(`h${i}-${"y".repeat(i)}`);
        expect(result.body.toString()).toBe(`body ${i} `.repeat(i + 1));
      });
    } finally {
      connection.destroy();
    }
  });

  it("subscribes and publishes through the broker (lean-client.ts): every message, in order, acknowledged in order", async () => {
    const server = await startBroker({ publishRate: 0 });
    const subscriber = connect(server.url);
    const publisher = connect(server.url);
    try {
      const token = testToken("lean");
      const received: number[] = [];
      const payloads: string[] = [];
      let subscribed!: () => void;
      const started = new Promise<void>((resolve) => (subscribed = resolve));
      const stream = subscribe(subscriber, token, [{ room: "lean" }], {
        subscribed: () => subscribed(),
        message: (sequence, payload) => {
          received.push(sequence);
          payloads.push(Buffer.from(payload).toString());
        },
        ended: () => {},
      });
      await started;
      const acks: number[] = [];
      const publishing = new LeanPublishStream(publisher, token, (ack) => acks.push(ack.sequence));
      for (let k = 0; k < 1000; k += 50)
        publishing.publish(Array.from({ length: 50 }, (_, i) => ({ room: "lean", payload: Buffer.from(`m${k + i}`), clientMessageId: `id-${k + i}` })));
      await waitUntil(() => received.length === 1000 && acks.length === 1000, () => `${received.length} received, ${acks.length} acknowledged`);
      expect(acks).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
      expect(received).toEqual(acks);
      expect(payloads).toEqual(Array.from({ length: 1000 }, (_, i) => `m${i}`));
      expect(await publishing.end()).toEqual({ code: 0, message: "" });
      stream.close();
    } finally {
      subscriber.close();
      publisher.close();
      await server.close();
    }
  });
});
