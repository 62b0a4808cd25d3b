import net from "node:net";
import { afterAll, beforeAll } from "vitest";
import * as F from "../../src/server/h2/frames.js";
import { literalBlock } from "../../src/server/h2/hpack.js";
import type { RunningServer } from "../../src/server/server.js";
import { startBroker } from "./broker.js";

export interface RawFrame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

/**
 * An HTTP/2 client that writes whatever frames a test asks for, valid or
 * not, and records every frame the server sends: what a hostile client
 * looks like to the broker's HTTP/2 connection (src/server/h2/session.ts).
 */
export class RawH2 {
  readonly frames: RawFrame[] = [];
  closed = false;
  private pending = Buffer.alloc(0);
  private constructor(readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 9) {
        const length = this.pending.readUIntBE(0, 3);
        if (this.pending.length < 9 + length) break;
        const f = this.pending;
        this.frames.push({ type: f[3]!, flags: f[4]!, stream: f.readUInt32BE(5) & 0x7fffffff, payload: Buffer.from(f.subarray(9, 9 + length)) });
        this.pending = f.subarray(9 + length);
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => (this.closed = true));
  }

  /** Connects, sends the preface and empty SETTINGS (`preface: false` sends nothing). */
  static async connect(port: number, preface = true): Promise<RawH2> {
    const socket = net.connect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    const client = new RawH2(socket);
    if (preface) {
      socket.write(F.PREFACE);
      client.send(F.SETTINGS, 0, 0);
    }
    return client;
  }

  send(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): void {
    const out = new F.Output();
    out.frame(type, flags, stream, payload);
    this.socket.write(out.take());
  }

  /** A request's HEADERS (gRPC Publish unless told otherwise). */
  headers(stream: number, fields: Array<[string, string]> = grpcRequest(), flags = F.END_HEADERS): void {
    this.send(F.HEADERS, flags, stream, literalBlock(fields));
  }

  /** The frames received so far of a type (and stream). */
  received(type: number, stream?: number): RawFrame[] {
    return this.frames.filter((f) => f.type === type && (stream === undefined || f.stream === stream));
  }

  /** The error code of the GOAWAY received, if any. */
  goawayCode(): number | undefined {
    const goaway = this.received(F.GOAWAY)[0];
    return goaway?.payload.readUInt32BE(4);
  }

  /** The RST_STREAM codes received for a stream. */
  resetCodes(stream: number): number[] {
    return this.received(F.RST_STREAM, stream).map((f) => f.payload.readUInt32BE(0));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** The request headers of a gRPC call. */
export const grpcRequest = (path = "/seqcast.v1.PubSubService/Publish"): Array<[string, string]> => [
  [":method", "POST"],
  [":scheme", "http"],
  [":path", path],
  [":authority", "localhost"],
  ["content-type", "application/grpc"],
  ["te", "trailers"],
];

/**
 * A broker for a test file, started before its tests and closed after them
 * with every raw client the tests opened: `connect` opens one (`preface:
 * false` sends nothing).
 */
export function brokerForRawClients(): { readonly broker: RunningServer; connect(preface?: boolean): Promise<RawH2> } {
  let broker: RunningServer | undefined;
  const clients: RawH2[] = [];
  beforeAll(async () => {
    broker = await startBroker();
  });
  afterAll(async () => {
    for (const c of clients) c.destroy();
    await broker?.close();
  });
  return {
    get broker() {
      if (!broker) throw new Error("the broker starts in beforeAll");
      return broker;
    },
    async connect(preface = true) {
      const client = await RawH2.connect(this.broker.port, preface);
      clients.push(client);
      return client;
    },
  };
}
