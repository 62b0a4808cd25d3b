/**
 * Unary Publish driven by h2load (nghttp2's HTTP/2 load generator, in C:
 * Debian's nghttp2-client) instead of this Node process. The bench's own
 * unary rows are limited by Node's HTTP/2 client (the load generator spends
 * more CPU per call than the broker); with h2load, what limits the row is the
 * server. As JetStream's row takes its faster publisher, the unary target
 * takes the faster of the two clients.
 *
 * h2load sends one request body again and again and reads no response body,
 * so this publisher checks the run as a whole: h2load's count of completed
 * 2xx responses, and the room's position, read through a Subscribe before and
 * after, advancing by exactly the number of requests (the broker gives each
 * stored message the next position and a refused one none: every publish
 * stored once). Each message is then acknowledged with one of the positions
 * the run took, in order; which response carried which is not known.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { BrokerChild } from "../lib/broker-process.js";
import { connect, subscribe } from "../lean-client.js";
import type { AckedPublisher } from "./driver.js";
import { TOKEN } from "./seqcast.js";

/** h2load's path, or undefined when it is not installed (the rows are then skipped). */
export function h2loadPath(): string | undefined {
  try {
    return execFileSync("sh", ["-c", "command -v h2load"], { encoding: "utf8" }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The room's last position, from the `subscribed` event of a Subscribe (the floor answers with its message count). */
function position(broker: BrokerChild, room: string): Promise<number> {
  const connection = connect(broker.url);
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no subscribed event for ${room} within 10 s`)), 10_000);
    subscribe(connection, TOKEN, [{ room }], {
      subscribed: (_room, sequence) => {
        clearTimeout(timer);
        resolve(Number(sequence));
      },
      message: () => {},
      ended: (code, message) => {
        clearTimeout(timer);
        reject(new Error(`Subscribe ended before subscribed: code ${code} ${message}`));
      },
    });
  }).finally(() => connection.close());
}

/** A gRPC-framed PublishRequest: room = 1, payload = 3 (no client_message_id: every request is a new message). */
function publishRequest(room: string, payload: Uint8Array): Buffer {
  const roomBytes = Buffer.from(room);
  const varint = (n: number) => {
    const out: number[] = [];
    for (; n >= 0x80; n >>>= 7) out.push((n & 0x7f) | 0x80);
    out.push(n);
    return out;
  };
  const body = Buffer.concat([Buffer.from([0x0a, ...varint(roomBytes.length)]), roomBytes, Buffer.from([0x1a, ...varint(payload.length)]), payload]);
  const framed = Buffer.alloc(5 + body.length);
  framed.writeUInt32BE(body.length, 1);
  body.copy(framed, 5);
  return framed;
}

export function h2loadPublisher(broker: BrokerChild, room: string, inFlight: number, h2load: string): AckedPublisher {
  const dir = mkdtempSync(path.join(os.tmpdir(), "seqcast-h2load-"));
  return {
    description: `unary Publish from h2load (C, nghttp2), ${inFlight} calls in flight on one HTTP/2 connection`,
    run: async (count, make, onAck) => {
      const bodyFile = path.join(dir, "request.bin");
      writeFileSync(bodyFile, publishRequest(room, make(0)));
      const before = await position(broker, room);
      const args = ["-n", String(count), "-c", "1", "-m", String(inFlight), "-d", bodyFile];
      for (const header of ["content-type: application/grpc", "te: trailers", `authorization: Bearer ${TOKEN}`]) args.push("-H", header);
      args.push(`${broker.url}/seqcast.v1.PubSubService/Publish`);
      const out = await new Promise<string>((resolve, reject) =>
        execFile(h2load, args, { maxBuffer: 1 << 20 }, (error, stdout, stderr) => (error ? reject(new Error(`h2load: ${error.message} ${stderr}`)) : resolve(stdout))),
      );
      const completed = Number(/status codes: (\d+) 2xx/.exec(out)?.[1] ?? 0);
      const after = await position(broker, room);
      const taken = after - before;
      for (let k = 0; k < count; k++) {
        if (k >= completed) onAck(k, 0, `h2load: ${completed} of ${count} responses completed with 2xx`);
        else if (taken !== count) onAck(k, 0, `the room's position moved by ${taken} for ${count} requests (${before} to ${after})`);
        else onAck(k, before + 1 + k);
      }
    },
    close: async () => rmSync(dir, { recursive: true, force: true }),
  };
}
