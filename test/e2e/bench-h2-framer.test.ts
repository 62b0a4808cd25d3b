/**
 * The bench's hand-written HTTP/2 connection (bench/lib/h2-framer.ts), the
 * floor that measures node:http2, against Node's HTTP/2 client (nghttp2):
 * bodies larger than every window in both directions, many streams at once,
 * headers through HPACK's dynamic table and Huffman strings. A measuring
 * stick that mangled a frame would measure nothing.
 */
import net from "node:net";
import { afterAll, beforeAll, describe } from "vitest";
import { FramerConnection, responseBlock, trailersBlock } from "../../bench/lib/h2-framer.js";
import { echoCases } from "../support/h2-echo.js";

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
