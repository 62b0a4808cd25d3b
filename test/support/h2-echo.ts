import http2 from "node:http2";
import { expect, it } from "vitest";

/**
 * What the tests of a hand-written HTTP/2 server connection share: calls
 * from Node's HTTP/2 client (nghttp2) to an echo handler that answers with
 * the body and trailers x-echo (the request's x-echo header), x-length and
 * x-path, and the cases every such connection must pass.
 */
const MiB = 1024 * 1024;

export interface Echo {
  status: number | undefined;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders;
}

export function send(session: http2.ClientHttp2Session, body: Buffer, header: string, path = "/echo"): Promise<Echo> {
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


/** Bodies beyond both sides' windows, 200 concurrent streams through HPACK, PING and SETTINGS; `url` once the server listens. */
export function echoCases(url: () => string): void {
  it("echoes bodies larger than both sides' windows, byte for byte", async () => {
    const session = http2.connect(url());
    try {
      // 3 MiB: beyond the 1 MiB it grants (it must send WINDOW_UPDATEs) and the client's 64 KiB window (it must wait for them).
      const body = Buffer.alloc(3 * MiB);
      for (let i = 0; i < body.length; i++) body[i] = (i * 31 + (i >> 11)) & 0xff;
      const result = await send(session, body, "big");
      expect(result.status).toBe(200);
      expect(result.trailers["x-length"]).toBe(String(body.length));
      expect(result.body.equals(body)).toBe(true);
    } finally {
      session.close();
    }
  });

  it("keeps 200 concurrent streams apart, with headers from HPACK's dynamic table and Huffman strings", async () => {
    const session = http2.connect(url());
    try {
      // The same long header value again and again (indexed after the first), and values that differ per stream (literals).
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => send(session, Buffer.from(`stream ${i} `.repeat(i + 1)), i % 2 ? `odd-${"x".repeat(100)}` : `even ${i}`, `/echo/${i}`)),
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
    const session = http2.connect(url());
    try {
      await new Promise<void>((resolve) => session.once("remoteSettings", () => resolve()));
      expect(session.remoteSettings.initialWindowSize).toBe(MiB);
      const acked = await new Promise<boolean>((resolve) => session.ping((error) => resolve(!error)));
      expect(acked).toBe(true);
      // Settings the client changes after the start (a new initial window) are acknowledged: the promise resolves.
      await new Promise<void>((resolve, reject) => session.settings({ initialWindowSize: MiB }, (error) => (error ? reject(error) : resolve())));
      expect((await send(session, Buffer.from("after settings"), "s")).body.toString()).toBe("after settings");
    } finally {
      session.close();
    }
  });

}
