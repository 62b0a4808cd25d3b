/**
 * Soak: a broker under honest and hostile load at once, for minutes, with
 * its memory, event-loop lag and the honest clients' delivery latency
 * reported over time. Not part of `npm test` (it takes minutes by design).
 *
 *   npm run soak                          (5 minutes, a report every 15 s)
 *   SOAK_MINUTES=30 SOAK_INTERVAL=60 npm run soak
 *   SOAK_ARGS="--engine memory" npm run soak     (extra `seqcast serve` flags)
 *
 * The broker is `seqcast serve` (sqlite engine on a temporary data dir) in a
 * process of its own, with bench/soak-probe.mjs preloaded to report its
 * event-loop delay and memory. Load, all from this process:
 *   honest   SOAK_SUBSCRIBERS (20) subscribers of one room, a publisher at
 *            SOAK_RATE (50) msg/s; latency = receive − send of every delivery
 *   hostile  slow consumers that never read a room of 32 KiB messages (20/s);
 *            filters built to cost seconds (nested comprehensions, regexes);
 *            GetHistory of unknown rooms (200/s); silent TCP connections and
 *            half HTTP/2 prefaces (50 per interval); oversized publishes (2 MiB)
 * Every hostile call's outcome is counted by gRPC code. The run fails (exit 1)
 * when an honest message is lost or duplicated, or the broker dies.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { PubSubService, SubscribeRequestSchema } from "../gen/es/seqcast/v1/pubsub_pb.js";
import { createSeqcastClient } from "../src/client/index.js";
import { mintToken } from "../src/tokens/mint.js";
import { ROOT } from "./lib/params.js";

const envNumber = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`soak: ${name} must be a positive number`);
    process.exit(2);
  }
  return value;
};
const MINUTES = envNumber("SOAK_MINUTES", 5);
const INTERVAL_S = envNumber("SOAK_INTERVAL", 15);
const SUBSCRIBERS = envNumber("SOAK_SUBSCRIBERS", 20);
const RATE = envNumber("SOAK_RATE", 50);
const SECRET = "seqcast-soak-secret";

const percentile = (values: number[], p: number) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};
const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "—");

async function startBroker(dataDir: string) {
  const args = ["--import", path.join(ROOT, "bench", "soak-probe.mjs"), path.join(ROOT, "bin", "seqcast.js"), "serve"];
  args.push("--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir, ...(process.env.SOAK_ARGS ?? "").split(/\s+/).filter(Boolean));
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, SEQCAST_JWT_SECRET: SECRET, SOAK_PROBE_MS: String(INTERVAL_S * 1000) },
  });
  const probes: Array<{ loopP99Ms: number; loopMaxMs: number; rssBytes: number; heapBytes: number }> = [];
  let output = "";
  const lines = (onLine: (line: string) => void) => {
    let buffered = "";
    return (chunk: Buffer) => {
      buffered += chunk.toString("utf8");
      for (let i = buffered.indexOf("\n"); i >= 0; i = buffered.indexOf("\n")) {
        onLine(buffered.slice(0, i));
        buffered = buffered.slice(i + 1);
      }
    };
  };
  const onLine = (line: string) => {
    if (line.startsWith('{"soakProbe"')) probes.push((JSON.parse(line) as { soakProbe: (typeof probes)[number] }).soakProbe);
    else output = (output + line + "\n").slice(-20_000);
  };
  child.stdout.on("data", lines(onLine));
  child.stderr.on("data", lines(onLine));
  // The broker must not outlive the soak (a frozen one would burn a core for good).
  const killBroker = () => child.kill("SIGKILL");
  process.once("exit", killBroker);
  for (const signal of ["SIGINT", "SIGTERM"] as const)
    process.once(signal, () => {
      killBroker();
      process.exit(130);
    });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker did not listen in 30 s:\n${output}`)), 30_000);
    const check = setInterval(() => {
      const match = /"msg":"seqcast listening".*?"url":"([^"]+)"/.exec(output);
      if (match) {
        clearInterval(check);
        clearTimeout(timer);
        resolve(match[1]!);
      }
    }, 50);
    child.once("exit", (code) => {
      clearInterval(check);
      clearTimeout(timer);
      reject(new Error(`broker exited (${code}):\n${output}`));
    });
  });
  return { child, url, probes, output: () => output };
}

/** Outcomes of hostile calls, by kind and gRPC code. */
class Outcomes {
  readonly counts = new Map<string, number>();
  add(kind: string, outcome: string) {
    const key = `${kind}: ${outcome}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
  async of(kind: string, call: () => Promise<unknown>) {
    try {
      await call();
      this.add(kind, "ok");
    } catch (error) {
      this.add(kind, error instanceof ConnectError ? Code[error.code] : String((error as Error).message).slice(0, 40));
    }
  }
}

const nested = (depth: number): string => (depth === 0 ? "true" : `[0,1,2,3,4,5,6,7,8,9].all(x${depth}, ${nested(depth - 1)})`);
const HOSTILE_FILTERS = [nested(30), `content == "" || ${nested(7)}`, `content.matches("(a+)+b") && [1,2,3].exists(x, content.matches("(.*a){12}"))`];

function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

async function main(): Promise<number> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), "seqcast-soak-"));
  const broker = await startBroker(dataDir);
  const token = (user: string) => mintToken(new TextEncoder().encode(SECRET), { user, ttlMs: (MINUTES + 10) * 60_000 });
  const { port } = new URL(broker.url);
  console.log(`soak: broker pid ${broker.child.pid} at ${broker.url}, ${MINUTES} min, report every ${INTERVAL_S} s`);

  // Honest: subscribers of one room and a paced publisher; every delivery's latency.
  const honestRoom = "soak.honest";
  const subscribers = await Promise.all(
    Array.from({ length: SUBSCRIBERS }, async (_, i) => createSeqcastClient({ baseUrl: broker.url, token: await token(`reader${i}`) })),
  );
  let lags: number[] = [];
  const seen = subscribers.map(() => new Set<number>());
  let duplicates = 0;
  const subscriptions = subscribers.map((client, i) => {
    const subscription = client.subscribe([honestRoom]);
    subscription.on((event) => {
      if (event.type !== "message") return;
      const [n, sent] = event.message.content.split(" ").map(Number) as [number, number];
      if (seen[i]!.has(n)) duplicates++;
      seen[i]!.add(n);
      lags.push(performance.timeOrigin + performance.now() - sent);
    });
    return subscription;
  });
  await new Promise((r) => setTimeout(r, 1000));
  const publisher = createSeqcastClient({ baseUrl: broker.url, token: await token("writer") });
  let published = 0;
  let publishErrors = 0;

  // Hostile: a raw connect client (no retries) and raw sockets.
  const hostile = createClient(PubSubService, createGrpcTransport({ baseUrl: broker.url }));
  const hostileHeaders = { authorization: `Bearer ${await token("mallory")}` };
  const outcomes = new Outcomes();
  const bigBody = "x".repeat(32 * 1024);
  const slowSessions: http2.ClientHttp2Session[] = [];
  const silentSockets: net.Socket[] = [];

  const timers: NodeJS.Timeout[] = [];
  const every = (ms: number, action: () => void) => timers.push(setInterval(action, ms));
  every(1000 / RATE, () => {
    const n = published++;
    publisher.publish(honestRoom, `${n} ${performance.timeOrigin + performance.now()}`).catch(() => publishErrors++);
  });
  every(50, () => void outcomes.of("32 KiB publish", () => hostile.publish({ room: "soak.big", content: bigBody }, { headers: hostileHeaders })));
  every(5, () => void outcomes.of("history of unknown room", () => hostile.getHistory({ room: `soak.void.${Math.random().toString(36).slice(2)}`, limit: 10 }, { headers: hostileHeaders })));
  every(2000, () => {
    for (const filter of HOSTILE_FILTERS) {
      void outcomes.of("costly filter (Subscribe)", async () => {
        for await (const _ of hostile.subscribe({ rooms: [{ room: "soak.big", filter }] }, { headers: hostileHeaders, timeoutMs: 3000 })) break;
      });
      void outcomes.of("costly filter (GetHistory)", () => hostile.getHistory({ room: "soak.big", filter, limit: 100 }, { headers: hostileHeaders, timeoutMs: 10_000 }));
    }
  });
  every(10_000, () => {
    void outcomes.of("2 MiB publish", () => hostile.publish({ room: "soak.big", content: "y".repeat(2 * 1024 * 1024) }, { headers: hostileHeaders, timeoutMs: 10_000 }));
    // Slow consumers: Subscribe on a connection of their own, then never read.
    for (let i = 0; i < 3; i++) {
      const session = http2.connect(broker.url);
      session.on("error", () => outcomes.add("slow consumer", "connection error"));
      const stream = session.request({
        ":method": "POST",
        ":path": "/seqcast.v1.PubSubService/Subscribe",
        "content-type": "application/grpc",
        te: "trailers",
        ...hostileHeaders,
      });
      stream.on("error", () => {});
      stream.on("close", () => outcomes.add("slow consumer", `closed by broker (rst ${stream.rstCode})`));
      stream.end(grpcFrame(toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { rooms: [{ room: "soak.big" }] }))));
      stream.pause();
      slowSessions.push(session);
    }
    // Silent TCP connections and half HTTP/2 prefaces.
    for (let i = 0; i < 50; i++) {
      const socket = net.connect(Number(port), "127.0.0.1");
      socket.on("error", () => {});
      socket.on("close", () => outcomes.add("silent connection", "closed by broker"));
      if (i % 2 === 0) socket.write("PRI * HTTP/2.0\r\n");
      silentSockets.push(socket);
    }
  });

  // Reports.
  const rows: string[][] = [];
  const started = performance.now();
  let lastPublished = 0;
  let brokerDied = false;
  broker.child.once("exit", () => (brokerDied = true));
  await new Promise<void>((resolve) => {
    const report = setInterval(() => {
      const probe = broker.probes.at(-1);
      const elapsed = (performance.now() - started) / 1000;
      const openSockets = silentSockets.filter((s) => !s.destroyed).length;
      const openSlow = slowSessions.filter((s) => !s.destroyed && !s.closed).length;
      const row = [
        `${Math.round(elapsed)} s`,
        fmt((probe?.rssBytes ?? NaN) / 2 ** 20, 0),
        fmt((probe?.heapBytes ?? NaN) / 2 ** 20, 0),
        fmt(probe?.loopP99Ms ?? NaN),
        fmt(probe?.loopMaxMs ?? NaN),
        String(published - lastPublished),
        fmt(percentile(lags, 50)),
        fmt(percentile(lags, 99)),
        fmt(lags.length ? lags.reduce((a, b) => Math.max(a, b), 0) : NaN),
        `${openSlow} / ${slowSessions.length}`,
        `${openSockets} / ${silentSockets.length}`,
      ];
      rows.push(row);
      console.log(`soak: ${row.join(" | ")}`);
      lags = [];
      lastPublished = published;
      if (brokerDied || elapsed >= MINUTES * 60) {
        clearInterval(report);
        resolve();
      }
    }, INTERVAL_S * 1000);
  });

  for (const timer of timers) clearInterval(timer);
  const diedUnderLoad = brokerDied;
  await new Promise((r) => setTimeout(r, 2000));
  const missing = seen.map((s) => published - publishErrors - s.size).reduce((a, b) => a + Math.max(0, b), 0);
  for (const s of subscriptions) await s.close();
  for (const s of slowSessions) s.destroy();
  for (const s of silentSockets) s.destroy();
  broker.child.kill("SIGTERM");
  // A broker frozen by an attack never gets to its SIGTERM handler.
  const killer = setTimeout(() => broker.child.kill("SIGKILL"), 5000);
  if (!diedUnderLoad) await new Promise((resolve) => broker.child.once("exit", resolve));
  clearTimeout(killer);
  rmSync(dataDir, { recursive: true, force: true });

  console.log("\n| time | broker RSS MiB | heap MiB | loop delay p99 ms | loop delay max ms | honest msgs | delivery p50 ms | p99 ms | max ms | slow consumers open | silent connections open |");
  console.log("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
  for (const row of rows) console.log(`| ${row.join(" | ")} |`);
  console.log("\nHostile calls by outcome:");
  for (const [key, count] of [...outcomes.counts].sort()) console.log(`- ${key}: ${count}`);
  console.log(
    `\nHonest: ${published} published (${publishErrors} failed), ${SUBSCRIBERS} subscribers, ${missing} deliveries missing, ${duplicates} duplicates` +
      (diedUnderLoad ? `; THE BROKER DIED:\n${broker.output()}` : ""),
  );
  return diedUnderLoad || missing > 0 || duplicates > 0 ? 1 : 0;
}

process.exitCode = await main();
process.exit();
