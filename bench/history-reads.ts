/**
 * What a GetHistory costs the broker, by protocol: the same broker, the same
 * reads, over gRPC (binary protobuf on HTTP/2: the broker's lean path,
 * src/server/grpc/fast-path.ts) and over Connect on HTTP/2 (connect-node's
 * unary pipeline, as every protocol but gRPC is served). Reads are what gap
 * fills, resumes, causal waits and a chat's scrollback send.
 *
 *   node --import tsx bench/history-reads.ts [memory|sqlite]
 *
 *   BENCH_READS [2000] per phase   BENCH_READS_ROUNDS [4]   BENCH_READS_IN_FLIGHT [8]
 *
 * Kinds of read: the last 50 of a room's 1,000 messages (backward, 256-byte
 * payloads) and an unknown room's empty page. Phases alternate protocols,
 * every other round in the opposite order; per protocol and kind: the median
 * reads/s and broker CPU per read (/proc) over the rounds, and the median of
 * the rounds' ratios. The client (the SDK, in this process) shares the
 * machine's two cores with the broker, so reads/s is bounded by both; broker
 * CPU per read is what compares. Nothing here is a threshold.
 */
import { createSeqcastClient } from "../src/client/node.js";
import { HistoryDirection } from "../gen/es/seqcast/v1/pubsub_pb.js";
import { startBroker, type EngineName } from "./lib/broker-process.js";
import { benchToken } from "./lib/params.js";
import { cpuSeconds } from "./lib/proc.js";

const engine = (process.argv[2] ?? "memory") as EngineName;
if (engine !== "memory" && engine !== "sqlite") throw new Error(`engine: memory or sqlite, not ${engine}`);
const READS = Number(process.env.BENCH_READS ?? 2_000);
const ROUNDS = Number(process.env.BENCH_READS_ROUNDS ?? 4);
const IN_FLIGHT = Number(process.env.BENCH_READS_IN_FLIGHT ?? 8);
const ROOM_MESSAGES = 1_000;

const broker = await startBroker(engine);
const token = benchToken("reader");
const protocols = {
  grpc: createSeqcastClient({ baseUrl: broker.url, token, protocol: "grpc", httpVersion: "2" }),
  connect: createSeqcastClient({ baseUrl: broker.url, token, protocol: "connect", httpVersion: "2" }),
} as const;
type ProtocolName = keyof typeof protocols;
const kinds = ["last 50 of 1,000", "unknown room"] as const;
type Kind = (typeof kinds)[number];

const payload = new Uint8Array(256).fill(7);
for (let i = 0; i < ROOM_MESSAGES; i += 100)
  await protocols.grpc.rpc.publishBatch({ messages: Array.from({ length: 100 }, () => ({ room: "scrollback", payload })) });

let unknown = 0;
async function phase(protocol: ProtocolName, kind: Kind): Promise<{ perSecond: number; cpuUs: number }> {
  const { rpc } = protocols[protocol];
  const read = () =>
    kind === "unknown room"
      ? rpc.getHistory({ room: `unknown.${unknown++}`, limit: 50 })
      : rpc.getHistory({ room: "scrollback", limit: 50, direction: HistoryDirection.BACKWARD });
  const cpu0 = cpuSeconds(broker.pid)!;
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next++ < READS) {
        const page = await read();
        if (kind !== "unknown room" && page.messages.length !== 50) throw new Error(`${protocol}: ${page.messages.length} messages, not 50`);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  return { perSecond: READS / seconds, cpuUs: ((cpuSeconds(broker.pid)! - cpu0) * 1e6) / READS };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const results = new Map<string, Array<{ perSecond: number; cpuUs: number }>>();
try {
  // Warm both paths up.
  for (const protocol of ["grpc", "connect"] as const) for (const kind of kinds) await phase(protocol, kind);
  for (let round = 0; round < ROUNDS; round++)
    for (const kind of kinds)
      for (const protocol of round % 2 === 0 ? (["grpc", "connect"] as const) : (["connect", "grpc"] as const)) {
        const key = `${protocol} ${kind}`;
        results.set(key, [...(results.get(key) ?? []), await phase(protocol, kind)]);
      }
} finally {
  await broker.stop();
}

console.log(`GetHistory on ${broker.version}, ${READS} reads a phase, ${IN_FLIGHT} in flight, ${ROUNDS} rounds (medians)`);
for (const kind of kinds) {
  const of = (protocol: ProtocolName) => results.get(`${protocol} ${kind}`)!;
  for (const protocol of ["grpc", "connect"] as const) {
    const r = of(protocol);
    console.log(
      `  ${kind}, ${protocol === "grpc" ? "gRPC (lean path)" : "Connect (connect-node)"}: ${median(r.map((x) => x.perSecond)).toFixed(0)} reads/s, ` +
        `broker ${median(r.map((x) => x.cpuUs)).toFixed(0)} µs CPU a read`,
    );
  }
  const ratios = of("connect").map((c, i) => c.cpuUs / of("grpc")[i]!.cpuUs);
  console.log(`  ${kind}: broker CPU a read, Connect / gRPC: ${median(ratios).toFixed(2)}× (rounds: ${ratios.map((r) => r.toFixed(2)).join(", ")})`);
}
