/**
 * The oversized-request attacker of test/hostile/connections.test.ts, in a
 * process of its own so that writing its 10 MiB (HTTP/2 framing on the
 * client side) does not slow the canary in the test process: the canary
 * then measures the broker alone.
 *
 *   node --import tsx test/hostile/oversize-attacker.ts URL grpc|grpc-web
 *
 * Connects and makes one small call, prints "ready", waits for a line on
 * stdin, then publishes 10 MiB to room "big" and three small messages after
 * it on the same client, and prints one JSON line (OversizeResult).
 */
import http2 from "node:http2";
import net from "node:net";
import { pathToFileURL } from "node:url";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { PubSubService } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { errorReason } from "../../src/client/retry.js";
import { testToken } from "../support/tokens.js";

export interface Outcome {
  code: string;
  reason?: string;
  message: string;
  ms: number;
}

export interface OversizeResult {
  refused: Outcome;
  /** The sequences and times of the small publishes that followed on the same client. */
  after: Array<{ sequence: string; ms: number }>;
  history: string[];
  /** HTTP/2 connections the client's calls went over. */
  connections: number;
}

/** A PubSubService client over one HTTP/2 connection (gRPC, or gRPC-Web), recording which connection each call used. */
export function grpcClient(
  url: string,
  user: string,
  localAddress?: string,
  protocol: "grpc" | "grpc-web" = "grpc",
): { rpc: Client<typeof PubSubService>; sessions: Set<http2.ClientHttp2Session> } {
  const sessions = new Set<http2.ClientHttp2Session>();
  const target = new URL(url);
  const manager = new (class extends Http2SessionManager {
    override async request(...args: Parameters<Http2SessionManager["request"]>) {
      const stream = await super.request(...args);
      sessions.add(stream.session as http2.ClientHttp2Session);
      return stream;
    }
  })(url, {}, localAddress ? { createConnection: () => net.connect({ host: target.hostname, port: Number(target.port), localAddress }) } : {});
  const token = testToken(user);
  const options = {
    baseUrl: url,
    sessionManager: manager,
    interceptors: [(next) => (request) => (request.header.set("authorization", `Bearer ${token}`), next(request))],
  } satisfies Parameters<typeof createGrpcTransport>[0];
  const transport = protocol === "grpc" ? createGrpcTransport(options) : createGrpcWebTransport({ ...options, httpVersion: "2" });
  return { rpc: createClient(PubSubService, transport), sessions };
}

/** The call's outcome: OK, or its code, reason and message; and how long it took. */
export async function outcomeOf(call: Promise<unknown>): Promise<Outcome> {
  const started = performance.now();
  try {
    await call;
  } catch (error) {
    const e = ConnectError.from(error);
    return { code: Code[e.code], reason: errorReason(e), message: e.rawMessage, ms: performance.now() - started };
  }
  return { code: "OK", message: "", ms: performance.now() - started };
}

async function main(): Promise<void> {
  const [url, protocol] = process.argv.slice(2) as [string, "grpc" | "grpc-web"];
  const { rpc, sessions } = grpcClient(url, "big-sender", undefined, protocol);
  await rpc.publish({ room: "warm", content: "warm" });
  const payload = new Uint8Array(10 * 1024 * 1024);
  process.stdout.write("ready\n");
  for await (const _ of process.stdin) break;
  const refused = await outcomeOf(rpc.publish({ room: "big", content: "x", payload }, { timeoutMs: 15_000 }));
  const after: OversizeResult["after"] = [];
  for (let i = 1; i <= 3; i++) {
    const started = performance.now();
    const ok = await rpc.publish({ room: "big", content: `small ${i}` }, { timeoutMs: 5000 });
    after.push({ sequence: String(ok.position?.sequence), ms: performance.now() - started });
  }
  const history = (await rpc.getHistory({ room: "big", limit: 10 })).messages.map((m) => m.content);
  const result: OversizeResult = { refused, after, history, connections: sessions.size };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
