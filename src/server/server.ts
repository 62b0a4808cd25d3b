import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import type { Identity } from "../broker/identity.js";
import { toConnectError } from "./errors.js";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Broker } from "../broker/broker.js";
import type { BrokerConfig } from "../broker/config.js";
import type { Engine, EngineOptions } from "../engine/engine.js";
import { PubSubService } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import type { Clock } from "../broker/clock.js";
import { Connections } from "./connections.js";
import { Keepalive } from "./keepalive.js";
import { createGrpcFastPath } from "./grpc/fast-path.js";
import { registerHealth, type HealthState } from "./health.js";
import { IDENTITY, pubSubService } from "./pubsub-service.js";
import { registerReflection } from "./reflection.js";
import type { WebPage } from "./web.js";
import { BrokerError } from "../broker/errors.js";
import { silentLogger, type Logger } from "../log/logger.js";
import { LogThrottle } from "../log/throttle.js";
import { createMetrics, type Metrics } from "./metrics.js";

/** Verifies the `authorization` header of a call; throws BrokerError("unauthenticated") otherwise. */
export type Authenticate = (authorization: string | null) => Promise<Identity>;

export interface ServerOptions {
  config: BrokerConfig;
  /** Every PubSubService call is authenticated by this (reflection and health are public). */
  authenticate: Authenticate;
  engine: (options: EngineOptions) => Engine;
  /** TCP port; 0 picks a free one. */
  port: number;
  host?: string;
  /** Time and timers of the broker and the keepalive (default: the system clock). */
  clock?: Clock;
  /** The chat page and its dev login (src/server/web.ts); asked first, for every request. */
  web?: WebPage;
  /** GET /metrics (Prometheus) on the same port (default true). */
  metrics?: boolean;
  /** Lifecycle events and errors of the broker and its connections (default: none). */
  logger?: Logger;
}

export interface RunningServer {
  readonly port: number;
  readonly url: string;
  readonly broker: Broker;
  /** The metrics served at /metrics, unless turned off. */
  readonly metrics: Metrics | undefined;
  /**
   * Graceful shutdown: health turns NOT_SERVING, every Subscribe stream ends
   * with UNAVAILABLE after its sessions' presence leaves are sent, then the
   * HTTP/2 sessions get GOAWAY and the port closes.
   */
  close(): Promise<void>;
}

/** How long shutdown waits for responses to be written, and then for connections to close. */
const SHUTDOWN_DRAIN_MS = 2000;

/** HTTP/2 connection preface (RFC 9113 §3.4), enough of it to tell from any HTTP/1.1 method. */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n");

/**
 * Requests up to this size are read and answered with a precise
 * INVALID_ARGUMENT by validation; beyond it the runtime refuses to read at all
 * (RESOURCE_EXHAUSTED, or a reset connection on HTTP/1.1).
 */
const MIN_READ_MAX_BYTES = 4 * 1024 * 1024;

/**
 * One port, every protocol: gRPC, gRPC-Web and Connect over HTTP/2 without
 * TLS (h2c, prior knowledge) and HTTP/1.1 (Connect and gRPC-Web only).
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const logger = options.logger ?? silentLogger;
  const withMetrics = options.metrics ?? true;
  const broker = new Broker({ config: options.config, engine: options.engine, clock: options.clock, logger, measureLatency: withMetrics });
  const connections = new Connections();
  const metrics = withMetrics ? createMetrics(broker, connections) : undefined;
  // Anyone can send a bad token as often as they like: count every one, log a few a second.
  const authLog = new LogThrottle(10, 1000);
  const verify: Authenticate = (header) =>
    options.authenticate(header).catch((error: unknown) => {
      const reason = error instanceof BrokerError ? error.reason : "INTERNAL";
      metrics?.authFailure(reason);
      authLog.run((suppressed) =>
        logger.info({ reason, error: (error as Error)?.message, ...(suppressed ? { suppressed } : {}) }, "authentication failed"),
      );
      throw error;
    });
  let health: HealthState | undefined;
  // One place decides who is calling, for every protocol and every RPC of the service.
  const authenticate: Interceptor = (next) => async (request) => {
    if (request.service.typeName !== PubSubService.typeName) return next(request);
    try {
      request.contextValues.set(IDENTITY, await verify(request.header.get("authorization")));
      return await next(request);
    } catch (error) {
      throw toConnectError(error);
    }
  };
  const readMaxBytes = Math.max(MIN_READ_MAX_BYTES, 2 * options.config.maxMessageBytes);
  const handler = connectNodeAdapter({
    interceptors: [authenticate],
    routes(router: ConnectRouter) {
      router.service(PubSubService, pubSubService(broker));
      registerReflection(router, [PubSubService]);
      const serving = (broker.engine.status?.().status ?? "ok") === "ok" ? "SERVING" : "NOT_SERVING";
      health = registerHealth(router, { "": serving, [PubSubService.typeName]: serving });
    },
    // Requests larger than a message could ever be are refused before decoding.
    readMaxBytes,
    // Never compress responses: the same message fans out to many streams and
    // per-stream gzip would redo the same work for each (grpc-js clients ask
    // for gzip by default). Compressed requests are still accepted.
    compressMinBytes: Number.MAX_SAFE_INTEGER,
  });
  // Health follows the engine: NOT_SERVING while it cannot serve (Redis
  // unreachable), SERVING again when it recovered by itself.
  let shuttingDown = false;
  const offEngineStatus = broker.engine.onStatusChange?.(({ status }) => {
    if (shuttingDown) return;
    const serving = status === "ok" ? "SERVING" : "NOT_SERVING";
    health?.set("", serving);
    health?.set(PubSubService.typeName, serving);
  });
  // Node's plaintext HTTP/2 server has no HTTP/1.1 fallback (allowHTTP1 needs
  // TLS/ALPN), so one TCP listener sniffs the HTTP/2 preface and hands each
  // connection to the right server.
  // gRPC's hot calls go to the lean writer on the HTTP/2 stream itself;
  // everything else gets Node's compatibility request/response objects and
  // the chat page (src/server/web.ts) or connect-node, exactly as a request listener would.
  const fastPath = createGrpcFastPath({ broker, authenticate: verify, readMaxBytes });
  const h2 = http2.createServer();
  h2.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    connections.trackStream(stream);
    if (fastPath(stream, headers)) return;
    const request = new http2.Http2ServerRequest(stream, headers, {}, rawHeaders);
    const response = new http2.Http2ServerResponse(stream);
    if (!metrics?.handle(request, response) && !options.web?.handle(request, response)) handler(request, response);
  });
  const h1 = http.createServer((request, response) => {
    connections.trackRequest(response);
    if (!metrics?.handle(request, response) && !options.web?.handle(request, response)) handler(request, response);
  });
  const server = net.createServer({ noDelay: true }, (socket) => {
    let head = Buffer.alloc(0);
    const sniff = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (head.length < H2_PREFACE.length && H2_PREFACE.subarray(0, head.length).equals(head)) return;
      socket.off("data", sniff);
      socket.pause();
      socket.unshift(head);
      if (head.subarray(0, H2_PREFACE.length).equals(H2_PREFACE)) {
        // The HTTP/2 session reads the unshifted bytes itself (on next tick);
        // resuming here would emit them as 'data' and lose them.
        h2.emit("connection", socket);
      } else {
        connections.trackH1Socket(socket);
        h1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", sniff);
    socket.on("error", () => socket.destroy());
  });
  const keepalive = new Keepalive<http2.ServerHttp2Session>({
    intervalMs: options.config.pingIntervalMs,
    deadTimeoutMs: options.config.deadTimeoutMs,
    clock: options.clock,
  });
  h2.on("session", (session) => {
    connections.trackH2Session(session);
    keepalive.add(session);
    session.once("close", () => keepalive.delete(session));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.host ?? "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    // A port in use: the broker's timers and engine must not keep the process alive.
    keepalive.close();
    await broker.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  const host = options.host && options.host !== "0.0.0.0" && options.host !== "::" ? options.host : "127.0.0.1";
  let closing: Promise<void> | undefined;
  return {
    port,
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    broker,
    metrics,
    close() {
      closing ??= (async () => {
        keepalive.close();
        shuttingDown = true;
        offEngineStatus?.();
        health?.set("", "NOT_SERVING");
        health?.set(PubSubService.typeName, "NOT_SERVING");
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await broker.close();
        health?.close();
        // Every stream now ends (UNAVAILABLE); wait until the last response is
        // written, then GOAWAY and close the idle keep-alive sockets.
        await connections.whenIdle(SHUTDOWN_DRAIN_MS);
        connections.closeAll();
        const force = setTimeout(() => connections.destroyAll(), SHUTDOWN_DRAIN_MS);
        await closed;
        clearTimeout(force);
      })();
      return closing;
    },
  };
}
