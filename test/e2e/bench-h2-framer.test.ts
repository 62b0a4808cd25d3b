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
import { FramerConnection, responseBlock, trailersBlock } from "../../bench/lib/h2-framer.js";

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

interface Echo {
  status: number | undefined;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders;
}

function echo(session: http2.ClientHttp2Session, body: Buffer, header: string, path = "/echo"): Promise<Echo> {
  return new Promise((resolve, reject) => {
    const request = session.request({ ":method": "POST", ":path": path, "x-echo": header });
    let status: number | undefined;
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    request.on("response", (headers) => (status = Number(headers[":status"])));
    request.on("trailers", (t) => (trailers = t));
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve({ status, body: Buffer.concat(chunks), trailers }));
    request.on("error", reject);
    // In 16 KiB writes, so the body goes out as many DATA frames under the windows.
    for (let at = 0; at < body.length; at += 16_384) request.write(body.subarray(at, at + 16_384));
    request.end();
  });
}

describe("bench/lib/h2-framer.ts", () => {
  it("echoes bodies larger than both sides' windows, byte for byte", async () => {
    const session = http2.connect(url);
    try {
      // 3 MiB: beyond the framer's 1 MiB grants (it must send WINDOW_UPDATEs) and the client's 64 KiB window (it must wait for them).
      const body = Buffer.alloc(3 * 1024 * 1024);
      for (let i = 0; i < body.length; i++) body[i] = (i * 31 + (i >> 11)) & 0xff;
      const result = await echo(session, body, "big");
      expect(result.status).toBe(200);
      expect(result.trailers["x-length"]).toBe(String(body.length));
      expect(result.body.equals(body)).toBe(true);
    } finally {
      session.close();
    }
  });

  it("keeps 200 concurrent streams apart, with headers from HPACK's dynamic table and Huffman strings", async () => {
    const session = http2.connect(url);
    try {
      // The same long header value again and again (indexed after the first), and values that differ per stream (literals).
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => echo(session, Buffer.from(`stream ${i} `.repeat(i + 1)), i % 2 ? `odd-${"x".repeat(100)}` : `even ${i}`, `/echo/${i}`)),
      );
      results.forEach((result, i) => {
        expect(result.status).toBe(200);
        expect(result.body.toString()).toBe(`stream ${i} `.repeat(i + 1));
        expect(result.trailers["x-echo"]).toBe(i % 2 ? `odd-${"x".repeat(100)}` : `even ${i}`);
        expect(result.trailers["x-path"]).toBe(`/echo/${i}`);
      });
    } finally {
      session.close();
    }
  });

  it("answers PING and acknowledges SETTINGS", async () => {
    const session = http2.connect(url);
    try {
      await new Promise<void>((resolve) => session.once("remoteSettings", () => resolve()));
      const acked = await new Promise<boolean>((resolve) => session.ping((error) => resolve(!error)));
      expect(acked).toBe(true);
      // Settings the client changes after the start (a new initial window) are acknowledged: the promise resolves.
      await new Promise<void>((resolve, reject) => session.settings({ initialWindowSize: 1 << 20 }, (error) => (error ? reject(error) : resolve())));
      expect((await echo(session, Buffer.from("after settings"), "s")).body.toString()).toBe("after settings");
    } finally {
      session.close();
    }
  });
});
