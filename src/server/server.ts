import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { AddressInfo } from "node:net";
import tls from "node:tls";
import { createContextValues, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import type { Identity } from "../broker/identity.js";
import { toConnectError } from "./errors.js";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Broker } from "../broker/broker.js";
import type { BrokerConfig } from "../broker/config.js";
import { MAX_ROOM_LENGTH } from "../names/rooms.js";
import type { Engine, EngineOptions } from "../engine/engine.js";
import { PubSubService } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { ServerReflection as ReflectionV1 } from "../../gen/es/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ReflectionV1alpha } from "../../gen/es/grpc/reflection/v1alpha/reflection_pb.js";
import { systemClock, type Clock } from "../broker/clock.js";
import { Connections, type ConnectionEventKind } from "./connections.js";
import { defaultConnectionLimits, resolveConnectionLimits, type ConnectionLimits } from "./connection-limits.js";
import { jsonShapeLimit } from "./json-limits.js";
import { holdOversizedEnvelopes, isEnveloped } from "./oversize-guard.js";
import { Keepalive } from "./keepalive.js";
import { createGrpcFastPath } from "./grpc/fast-path.js";
import { registerHealth, type HealthState } from "./health.js";
import { IDENTITY, pubSubService, RESET_STREAM } from "./pubsub-service.js";
import { registerReflection } from "./reflection.js";
import type { WebPage } from "./web.js";
import { BrokerError } from "../broker/errors.js";
import { silentLogger, type Logger } from "../log/logger.js";
import { LogThrottle } from "../log/throttle.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { ALPN_PROTOCOLS, type TlsCertificate } from "./tls.js";
import { H2Session } from "./h2/session.js";
import type { H2Stream } from "./h2/stream.js";

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
  /** Connection limits and timeouts (default: defaultConnectionLimits, `auto` resolved from the open-file limit). */
  connections?: Partial<ConnectionLimits>;
  /**
   * Serve TLS on the port instead of plaintext: HTTP/2 (gRPC, Connect,
   * gRPC-Web) for clients that offer `h2` by ALPN, HTTP/1.1 otherwise. Its
   * reload() takes effect for the next connection.
   */
  tls?: TlsCertificate;
}

export interface RunningServer {
  readonly port: number;
  readonly url: string;
  readonly broker: Broker;
  /** The metrics served at /metrics, unless turned off. */
  readonly metrics: Metrics | undefined;
  /** The connection limits in force (`auto` resolved). */
  readonly connectionLimits: ConnectionLimits;
  /** Connections refused or closed by the limits, by why, since start. */
  readonly connectionCounts: Readonly<Record<ConnectionEventKind, number>>;
  /**
   * Graceful shutdown: health turns NOT_SERVING, every Subscribe stream ends
   * with UNAVAILABLE after its sessions' presence leaves are sent, then the
   * HTTP/2 sessions get GOAWAY and the port closes.
   */
  close(): Promise<void>;
}

/** How long shutdown waits for responses to be written, and then for connections to close. */
const SHUTDOWN_DRAIN_MS = 2000;

/** Paths of the calls whose requests stream (PublishStream, reflection): their requests never have to end. */
const CLIENT_STREAMING_PATHS = new Set(
  [PubSubService, ReflectionV1, ReflectionV1alpha].flatMap((service) =>
    service.methods
      .filter((m) => m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming")
      .map((m) => `/${service.typeName}/${m.name}`),
  ),
);

/** HTTP/2 connection preface (RFC 9113 §3.4), enough of it to tell from any HTTP/1.1 method. */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n");

/**
 * HTTP/2 flow-control window the broker grants each client, per stream and
 * per connection: how many request bytes a client may send before the
 * broker's acknowledgement of the earlier ones (WINDOW_UPDATE) comes back.
 * HTTP/2's default, 64 KiB, holds ~250 messages of 256 bytes, a quarter of a
 * PublishStream's default window of 1,024 unacknowledged messages, and turns
 * a publisher's stream into a round trip per 64 KiB: 1 MiB took a lean
 * publisher from ~125k to ~160k acknowledged publishes/s here (bench ingest).
 * It bounds what one connection can have in flight towards the broker, not
 * what the broker holds: a stream that is read is drained as it arrives.
 */
export const H2_WINDOW_BYTES = 1024 * 1024;

/**
 * The HTTP/2 limits of every connection: the windows above; streams open at
 * once per connection (more are refused with REFUSED_STREAM, which clients
 * retry; the idle-sessions bench holds 100 Subscribe streams on each of 100
 * connections); the largest request header list (names, values and 32
 * bytes per field), 64 KiB as nghttp2's default.
 */
const H2_SESSION_LIMITS = { windowBytes: H2_WINDOW_BYTES, maxConcurrentStreams: 10_000, maxHeaderListBytes: 64 * 1024 };

/**
 * Requests up to this size are read and answered with a precise
 * INVALID_ARGUMENT by validation; beyond it the runtime refuses to read at all
 * (RESOURCE_EXHAUSTED, or a reset connection on HTTP/1.1).
 */
const MIN_READ_MAX_BYTES = 4 * 1024 * 1024;

/**
 * The largest Subscribe request a client needs: the most rooms a session may
 * hold, each with the longest name, the largest filter and a resume
 * position, plus device, subscriber and session id.
 */
function subscribeReadMaxBytes(config: BrokerConfig): number {
  const perRoom = MAX_ROOM_LENGTH + config.filterMaxBytes + 128;
  return config.maxRoomsPerSession * perRoom + 4096;
}

/**
 * One port, every protocol: gRPC, gRPC-Web and Connect over HTTP/2 and
 * HTTP/1.1 (Connect and gRPC-Web only); in plaintext (HTTP/2 by prior
 * knowledge, h2c) or, with `tls`, over TLS (HTTP/2 by ALPN).
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const logger = options.logger ?? silentLogger;
  const withMetrics = options.metrics ?? true;
  const broker = new Broker({ config: options.config, engine: options.engine, clock: options.clock, logger, measureLatency: withMetrics });
  const clock = options.clock ?? systemClock;
  const limits = resolveConnectionLimits({ ...defaultConnectionLimits, ...options.connections });
  const connections: Connections = new Connections(limits, { clock, onEvent: reportConnectionEvents(clock, logger, (): Connections => connections) });
  const metrics = withMetrics ? createMetrics(broker, connections, options.tls) : undefined;
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
    // JSON nested deeper, or of more objects, than any request of the API is refused before JSON.parse builds it.
    jsonOptions: jsonShapeLimit(),
    contextValues: (request) => createContextValues().set(RESET_STREAM, () => resetRequest(request)),
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
  // One TCP listener sniffs the HTTP/2 preface (or TLS's ALPN tells) and
  // hands each connection to the broker's own HTTP/2 connection (h2/session.ts,
  // about a fifth of node:http2's CPU per call) or Node's HTTP/1.1 server.
  // gRPC's hot calls go to the lean writer on the HTTP/2 stream itself;
  // everything else gets Node's compatibility request/response objects and
  // the chat page (src/server/web.ts) or connect-node, exactly as a request listener would.
  const fastPath = createGrpcFastPath({ broker, authenticate: verify, readMaxBytes, subscribeReadMaxBytes: subscribeReadMaxBytes(options.config) });
  const onStream = (stream: H2Stream, headers: http2.IncomingHttpHeaders, rawHeaders: string[]) => {
    connections.trackStream(stream, CLIENT_STREAMING_PATHS.has(headers[":path"] ?? ""));
    if (fastPath(stream, headers)) return;
    if (isEnveloped(headers["content-type"])) holdOversizedEnvelopes(stream, readMaxBytes);
    // Node's compatibility request and response work on any stream with ServerHttp2Stream's members (h2/stream.ts).
    const request = new http2.Http2ServerRequest(stream as unknown as http2.ServerHttp2Stream, headers, {}, rawHeaders);
    const response = new http2.Http2ServerResponse(stream as unknown as http2.ServerHttp2Stream);
    if (!metrics?.handle(request, response) && !options.web?.handle(request, response)) handler(request, response);
  };
  const h1 = http.createServer(
    {
      // A request head must be complete within the handshake timeout (header dripping), its body within the request timeout.
      headersTimeout: limits.handshakeTimeoutMs,
      requestTimeout: limits.requestTimeoutMs > 0 ? Math.max(limits.requestTimeoutMs, limits.handshakeTimeoutMs) : 0,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, limits.handshakeTimeoutMs / 4)),
    },
    (request, response) => {
      connections.trackRequest(response);
      if (!metrics?.handle(request, response) && !options.web?.handle(request, response)) handler(request, response);
    },
  );
  // Node checks those timeouts from a timer it starts when the server listens;
  // this one never listens (the sniffing listener below hands it sockets), so
  // start it here (test/hostile/connections.test.ts: header dripping).
  h1.emit("listening");
  // The connection limits count and time the TCP socket (`raw`); the protocol servers get what carries the requests.
  const toH2 = (socket: net.Socket, raw: net.Socket) => {
    const session = new H2Session(socket, { ...H2_SESSION_LIMITS, onStream });
    connections.trackH2Session(session, raw);
    keepalive.add(session);
    session.once("close", () => keepalive.delete(session));
  };
  const toH1 = (socket: net.Socket, raw: net.Socket) => {
    connections.trackH1Socket(raw);
    h1.emit("connection", socket);
  };
  const certificate = options.tls;
  const server = net.createServer({ noDelay: true }, (socket) => {
    socket.on("error", () => socket.destroy());
    if (!connections.admit(socket)) return;
    if (certificate) return secure(socket, certificate.secureContext, toH2, toH1);
    let head = Buffer.alloc(0);
    const sniff = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (head.length < H2_PREFACE.length && H2_PREFACE.subarray(0, head.length).equals(head)) return;
      socket.off("data", sniff);
      socket.pause();
      socket.unshift(head);
      if (head.subarray(0, H2_PREFACE.length).equals(H2_PREFACE)) {
        // The HTTP/2 session reads the unshifted bytes as it resumes the socket.
        toH2(socket, socket);
      } else {
        toH1(socket, socket);
        socket.resume();
      }
    };
    socket.on("data", sniff);
  });
  const keepalive = new Keepalive<H2Session>({
    intervalMs: options.config.pingIntervalMs,
    deadTimeoutMs: options.config.deadTimeoutMs,
    clock: options.clock,
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
    connections.close();
    h1.close();
    await broker.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  const host = options.host && options.host !== "0.0.0.0" && options.host !== "::" ? options.host : "127.0.0.1";
  let closing: Promise<void> | undefined;
  return {
    port,
    url: `${certificate ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${port}`,
    broker,
    metrics,
    connectionLimits: limits,
    connectionCounts: connections.counts,
    close() {
      closing ??= (async () => {
        keepalive.close();
        shuttingDown = true;
        offEngineStatus?.();
        health?.set("", "NOT_SERVING");
        health?.set(PubSubService.typeName, "NOT_SERVING");
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        h1.close();
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

/** How often at most a line about refused or closed connections is logged (an attack makes thousands). */
const CONNECTION_LOG_EVERY_MS = 10_000;

/**
 * Logs refused and reaped connections as one JSON line with the counts so
 * far: the first a second after it happened, then at most every 10 s.
 */
function reportConnectionEvents(clock: Clock, logger: Logger, connections: () => Connections): (kind: ConnectionEventKind, address: string) => void {
  let scheduled = false;
  let lastAt = -Infinity;
  let lastAddress = "";
  return (_kind, address) => {
    lastAddress = address;
    if (scheduled) return;
    scheduled = true;
    const wait = Math.max(1000, lastAt + CONNECTION_LOG_EVERY_MS - clock.now());
    clock.setTimeout(() => {
      scheduled = false;
      lastAt = clock.now();
      const { counts, open } = connections();
      logger.warn({ ...counts, open, lastAddress }, "connections refused or closed by limits");
    }, wait);
  };
}

/** Ends a request that cannot end normally: RST_STREAM on HTTP/2, the connection on HTTP/1.1 (one request at a time there). */
function resetRequest(request: http.IncomingMessage | http2.Http2ServerRequest): void {
  if (request instanceof http2.Http2ServerRequest) {
    if (!request.stream.destroyed) request.stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  } else request.socket.destroy();
}

/**
 * TLS on an accepted connection, then the protocol ALPN chose: `h2` to the
 * HTTP/2 server, anything else (`http/1.1`, or no ALPN) to the HTTP/1.1
 * server, as Node's own secure HTTP/2 server with allowHTTP1 does. A
 * handshake that fails (plaintext, a protocol version or cipher in common with none,
 * garbage) closes the connection; one that stalls, or a client silent after
 * it, is closed by the handshake timeout like any connection that has not
 * shown its protocol.
 */
function secure(
  raw: net.Socket,
  secureContext: tls.SecureContext,
  toH2: (socket: net.Socket, raw: net.Socket) => void,
  toH1: (socket: net.Socket, raw: net.Socket) => void,
): void {
  const socket = new tls.TLSSocket(raw, { isServer: true, secureContext, ALPNProtocols: ALPN_PROTOCOLS });
  socket.on("error", () => {
    socket.destroy();
    raw.destroy();
  });
  // 'secure': the server side's end of the handshake. tls.Server marks the
  // socket connected there before its 'secureConnection'; so must we, or the
  // HTTP/2 session would wait for a 'secureConnect' only client sockets emit.
  socket.once("secure", () => {
    (socket as tls.TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
    // HTTP/2 shows itself with the client's SETTINGS (the handshake timeout runs until then).
    if (socket.alpnProtocol === "h2") return toH2(socket, raw);
    // HTTP/1.1 once its first bytes arrive: a client silent after the TLS handshake is closed by the handshake timeout.
    socket.once("data", (head: Buffer) => {
      socket.pause();
      socket.unshift(head);
      toH1(socket, raw);
      socket.resume();
    });
  });
}
