import type http from "node:http";
import type http2 from "node:http2";
import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import type { Broker } from "../broker/broker.js";
import { LATENCY_BUCKETS, type LatencyHistogram } from "../broker/stats.js";
import type { Connections } from "./connections.js";
import { registerStorageMetrics } from "./metrics-storage.js";
import type { TlsCertificate } from "./tls.js";

/**
 * GET /metrics on the broker's port (HTTP/1.1 and HTTP/2): Prometheus text
 * exposition of the broker's counters (src/broker/stats.ts), gauges read at
 * scrape time, the two publish latency histograms, and prom-client's
 * process metrics (CPU, heap, event-loop lag, GC, handles). Nothing here runs
 * per event: counters are plain numbers the broker adds to, and every
 * metric below reads them when scraped.
 */

export const METRICS_PATH = "/metrics";

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;

export interface Metrics {
  readonly registry: Registry;
  /** A call refused for its token: counted by the ErrorInfo reason (TOKEN_MISSING, TOKEN_EXPIRED, TOKEN_INVALID). */
  authFailure(reason: string): void;
  /** Answers GET/HEAD /metrics; false leaves the request to the next handler. */
  handle(request: Request, response: Response): boolean;
  /** The exposition text, as /metrics serves it. */
  text(): Promise<string>;
}

/**
 * Process metrics are the process's, not one server's: collected once per
 * process (prom-client's event-loop monitor and GC observer cannot be
 * stopped), and served by every server in it.
 */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export function createMetrics(broker: Broker, connections: Connections, certificate?: TlsCertificate): Metrics {
  const registry = new Registry();
  const stats = broker.stats;
  const registers = [registry];

  new Counter({
    name: "seqcast_publishes_total",
    help: "Publishes by outcome: stored (new message), duplicate (a retry of a stored client_message_id), rejected (invalid, not allowed), rate_limited, failed (the engine could not store it).",
    labelNames: ["outcome"],
    registers,
    collect() {
      this.reset();
      const p = stats.published;
      this.inc({ outcome: "stored" }, p.stored);
      this.inc({ outcome: "duplicate" }, p.duplicate);
      this.inc({ outcome: "rejected" }, p.rejected);
      this.inc({ outcome: "rate_limited" }, p.rateLimited);
      this.inc({ outcome: "failed" }, p.failed);
    },
  });
  new Counter({
    name: "seqcast_deliveries_total",
    help: "Messages per subscriber by outcome: sent (handed to its stream, redeliveries included), filtered (removed by its filter), dropped (queued, then discarded when its stream ended with an error: a slow consumer's cut-off, mostly).",
    labelNames: ["outcome"],
    registers,
    collect() {
      this.reset();
      this.inc({ outcome: "sent" }, stats.sent);
      this.inc({ outcome: "filtered" }, stats.filtered);
      this.inc({ outcome: "dropped" }, stats.dropped);
    },
  });
  new Counter({
    name: "seqcast_filter_errors_total",
    help: "Messages whose subscription filter failed to evaluate (counted as filtered too).",
    registers,
    collect() {
      this.reset();
      this.inc(stats.filterErrors);
    },
  });
  new Counter({
    name: "seqcast_slow_consumer_cutoffs_total",
    help: "Subscribe streams ended with RESOURCE_EXHAUSTED/SLOW_CONSUMER because their queue reached --session-queue or --session-queue-bytes.",
    registers,
    collect() {
      this.reset();
      this.inc(stats.slowConsumers);
    },
  });
  new Counter({
    name: "seqcast_engine_errors_total",
    help: "Storage engine calls that failed (each answered UNAVAILABLE/ENGINE_UNAVAILABLE).",
    registers,
    collect() {
      this.reset();
      this.inc(stats.engineErrors);
    },
  });
  const authFailures = new Counter({
    name: "seqcast_auth_failures_total",
    help: "Calls refused with UNAUTHENTICATED, by ErrorInfo reason.",
    labelNames: ["reason"],
    registers,
  });
  // Known reasons show as 0 before the first failure, so rate() works from the start.
  const authChildren = new Map(["TOKEN_MISSING", "TOKEN_EXPIRED", "TOKEN_INVALID"].map((reason) => [reason, authFailures.labels(reason)]));
  for (const child of authChildren.values()) child.inc(0);

  new Gauge({
    name: "seqcast_sessions",
    help: "Live Subscribe sessions on this node.",
    registers,
    collect() {
      this.set(broker.sessionCount);
    },
  });
  new Gauge({
    name: "seqcast_rooms",
    help: "Rooms and patterns held by at least one session of this node.",
    registers,
    collect() {
      this.set(broker.roomCount);
    },
  });
  new Gauge({
    name: "seqcast_session_queued_bytes",
    help: "Estimated bytes queued for all sessions and not yet handed to their streams.",
    registers,
    collect() {
      this.set(broker.queuedBytes);
    },
  });
  new Gauge({
    name: "seqcast_streams",
    help: "Requests in flight: HTTP/2 streams (a Subscribe is one for its whole life) and HTTP/1.1 requests.",
    registers,
    collect() {
      this.set(connections.activeRequests);
    },
  });
  new Gauge({
    name: "seqcast_connections",
    help: "Open client connections by protocol (h2: HTTP/2, http1: HTTP/1.1).",
    labelNames: ["protocol"],
    registers,
    collect() {
      this.set({ protocol: "h2" }, connections.h2Sessions.size);
      this.set({ protocol: "http1" }, connections.h1Sockets.size);
    },
  });
  new Gauge({
    name: "seqcast_engine_up",
    help: "1 while the storage engine can serve, 0 while it cannot (Redis unreachable).",
    labelNames: ["engine"],
    registers,
    collect() {
      this.set({ engine: broker.engine.name }, (broker.engine.status?.().status ?? "ok") === "ok" ? 1 : 0);
    },
  });
  new Gauge({
    name: "seqcast_history_bytes",
    help: "Retained messages held in the broker's memory (memory engine): allocated, the chunks held; live, the records still retained in them.",
    labelNames: ["state"],
    registers,
    collect() {
      const history = broker.engine.memory?.().history;
      if (!history) return;
      this.set({ state: "allocated" }, history.allocatedBytes);
      this.set({ state: "live" }, history.liveBytes);
    },
  });
  new Gauge({
    name: "seqcast_idempotency_keys",
    help: "Idempotency keys held in the broker's memory (memory engine: every key within the dedupe window; sqlite: the in-memory index of the last one to two windows).",
    registers,
    collect() {
      const memory = broker.engine.memory?.();
      if (memory) this.set(memory.idempotencyKeys);
    },
  });
  new Gauge({
    name: "seqcast_idempotency_key_bytes",
    help: "Bytes of the table that holds the idempotency keys in the broker's memory.",
    registers,
    collect() {
      const memory = broker.engine.memory?.();
      if (memory) this.set(memory.idempotencyKeyBytes);
    },
  });
  registerStorageMetrics(registers, broker.engine);
  if (certificate)
    new Gauge({
      name: "seqcast_tls_certificate_expiry_timestamp_seconds",
      help: "When the TLS certificate served to new connections expires (Unix time; it follows reloads): alert well before it.",
      registers,
      collect() {
        this.set(Date.parse(certificate.summary.validTo) / 1000);
      },
    });
  registry.registerMetric(
    histogram(
      "seqcast_publish_commit_seconds",
      "Seconds from receiving a publish to its engine's commit (stored, not duplicates).",
      broker.latency.commit,
    ) as never,
  );
  registry.registerMetric(
    histogram(
      "seqcast_publish_write_seconds",
      "Seconds from receiving a publish to handing its fan-out to the subscribers' streams, once per message (messages of other nodes and of the redis engine: from their time stamp, to the millisecond).",
      broker.latency.write,
    ) as never,
  );

  const text = async () => {
    const [own, process] = await Promise.all([registry.metrics(), processMetrics().metrics()]);
    return own + process;
  };
  return {
    registry,
    authFailure(reason) {
      (authChildren.get(reason) ?? authFailures.labels(reason)).inc();
    },
    text,
    handle(request, response) {
      if ((request.url ?? "").split("?")[0] !== METRICS_PATH) return false;
      const method = request.method ?? "GET";
      const res = response as http.ServerResponse;
      if (method !== "GET" && method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" });
        res.end("use GET\n");
        return true;
      }
      text().then(
        (body) => {
          res.writeHead(200, { "content-type": registry.contentType, "cache-control": "no-store", "content-length": String(Buffer.byteLength(body)) });
          res.end(method === "HEAD" ? undefined : body);
        },
        (error: unknown) => {
          res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
          res.end(`metrics failed: ${String((error as Error)?.message ?? error)}\n`);
        },
      );
      return true;
    },
  };
}

/**
 * A LatencyHistogram the broker records into, in the shape prom-client's
 * registry renders (what a prom-client Histogram's get() returns): cumulative
 * `le` buckets, +Inf, sum and count.
 */
function histogram(name: string, help: string, source: LatencyHistogram) {
  return {
    name,
    help,
    type: "histogram",
    aggregator: "sum",
    get: async () => {
      let cumulative = 0;
      const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = LATENCY_BUCKETS.map((le, i) => {
        cumulative += source.counts[i]!;
        return { labels: { le }, value: cumulative, metricName: `${name}_bucket` };
      });
      values.push({ labels: { le: "+Inf" }, value: source.count, metricName: `${name}_bucket` });
      return {
        name,
        help,
        type: "histogram",
        aggregator: "sum",
        values: [...values, { labels: {}, value: source.sum, metricName: `${name}_sum` }, { labels: {}, value: source.count, metricName: `${name}_count` }],
      };
    },
  };
}
