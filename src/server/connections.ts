import type http from "node:http";
import type net from "node:net";
import { systemClock, type Clock } from "../broker/clock.js";
import type { ConnectionLimits } from "./connection-limits.js";

/** Why a connection was refused or closed by the broker; counted and logged. */
export type ConnectionEventKind =
  /** Over --max-connections: closed as it was accepted. */
  | "over_max_connections"
  /** Over --max-connections-per-ip for its address: closed as it was accepted. */
  | "over_max_connections_per_ip"
  /** Did not show its protocol within --handshake-timeout (silent, or a partial HTTP/2 preface). */
  | "handshake_timeout"
  /** An HTTP/2 connection without a stream for --idle-timeout (GOAWAY). */
  | "idle_timeout"
  /** An HTTP/2 call whose request had not fully arrived within --request-timeout (RST_STREAM CANCEL). */
  | "request_timeout";

/** What Connections needs of an HTTP/2 connection (src/server/h2/session.ts has it). */
export interface TrackedSession {
  /** GOAWAY: no new streams; the connection closes after the open ones. */
  close(): void;
  destroy(): void;
  once(event: "close" | "remoteSettings", listener: () => void): unknown;
}

/** What Connections needs of an HTTP/2 stream (src/server/h2/stream.ts has it). */
export interface TrackedStream {
  readonly closed: boolean;
  readonly destroyed: boolean;
  /** The request ended with its HEADERS (no body). */
  readonly endAfterHeaders: boolean;
  readonly state: { readonly remoteClose: number };
  /** Its connection. */
  readonly h2?: TrackedSession;
  close(code: number): void;
  once(event: "end" | "close", listener: () => void): unknown;
}

/** RST_STREAM's CANCEL (RFC 9113 §7). */
const CANCEL = 0x8;

interface Tracked {
  socket: net.Socket;
  address: string;
  acceptedAt: number;
  /** The protocol is known and (HTTP/2) the client's SETTINGS arrived; HTTP/1.1 timeouts are Node's from here. */
  handshaken: boolean;
  session: TrackedSession | undefined;
  streams: number;
  idleSince: number;
  closing: boolean;
}

/** `::ffff:127.0.0.1` and `127.0.0.1` are one client. */
const addressOf = (socket: net.Socket) => (socket.remoteAddress ?? "unknown").replace(/^::ffff:/, "");

/**
 * The connections and requests of one server.
 *
 * Admission: a connection over the total or per-address limit is destroyed
 * as it is accepted, before it costs more than its file descriptor.
 *
 * Reaping: a connection that has not shown its protocol within the
 * handshake timeout (a silent TCP connection, a partial HTTP/2 preface) is
 * destroyed; an HTTP/2 connection without an open stream for the idle
 * timeout gets GOAWAY. (HTTP/1.1 head and body timeouts are Node's own,
 * see server.ts.)
 *
 * Shutdown: waits for the last response to be written, then closes what is
 * left without sleeping a fixed time: HTTP/2 sessions get GOAWAY, idle
 * HTTP/1.1 keep-alive sockets are destroyed (the HTTP/1.1 server never
 * listens itself, so Node's closeAllConnections() does not know them).
 */
export class Connections {
  readonly h2Sessions = new Set<TrackedSession>();
  readonly h1Sockets = new Set<net.Socket>();
  /** Refusals and closes by kind, since start. */
  readonly counts: Record<ConnectionEventKind, number> = {
    over_max_connections: 0,
    over_max_connections_per_ip: 0,
    handshake_timeout: 0,
    idle_timeout: 0,
    request_timeout: 0,
  };
  private readonly tracked = new Map<net.Socket, Tracked>();
  private readonly bySession = new Map<TrackedSession, Tracked>();
  private readonly perAddress = new Map<string, number>();
  private active = 0;
  private idleWaiters: Array<() => void> = [];
  private readonly clock: Clock;
  private readonly stopReaper: () => void;

  constructor(
    private readonly limits: ConnectionLimits,
    options: { clock?: Clock; onEvent?: (kind: ConnectionEventKind, address: string) => void } = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.onEvent = options.onEvent;
    const timeouts = [limits.handshakeTimeoutMs, limits.idleTimeoutMs].filter((ms) => ms > 0);
    const every = Math.max(50, Math.min(1000, ...timeouts.map((ms) => ms / 4)));
    this.stopReaper = this.clock.setInterval(() => this.reap(), every);
  }

  private readonly onEvent: ((kind: ConnectionEventKind, address: string) => void) | undefined;

  /** Open connections (accepted and not yet closed). */
  get open(): number {
    return this.tracked.size;
  }

  /**
   * Counts a new connection, or destroys it when it is over a limit (false).
   * Its slot is freed when its socket closes.
   */
  admit(socket: net.Socket): boolean {
    const address = addressOf(socket);
    const fromAddress = this.perAddress.get(address) ?? 0;
    const over =
      this.tracked.size >= this.limits.maxConnections
        ? "over_max_connections"
        : this.limits.maxConnectionsPerAddress > 0 && fromAddress >= this.limits.maxConnectionsPerAddress
          ? "over_max_connections_per_ip"
          : undefined;
    if (over) {
      socket.destroy();
      this.event(over, address);
      return false;
    }
    const now = this.clock.now();
    this.tracked.set(socket, { socket, address, acceptedAt: now, handshaken: false, session: undefined, streams: 0, idleSince: now, closing: false });
    this.perAddress.set(address, fromAddress + 1);
    socket.once("close", () => {
      const entry = this.tracked.get(socket);
      if (!entry) return;
      this.tracked.delete(socket);
      if (entry.session) this.bySession.delete(entry.session);
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left > 0) this.perAddress.set(address, left);
      else this.perAddress.delete(address);
    });
    return true;
  }

  /** An HTTP/1.1 connection: from here Node's own head, body and keep-alive timeouts govern it. */
  trackH1Socket(socket: net.Socket): void {
    const entry = this.tracked.get(socket);
    if (entry) entry.handshaken = true;
    this.h1Sockets.add(socket);
    socket.once("close", () => this.h1Sockets.delete(socket));
  }

  /** The HTTP/2 session of an admitted socket: handshaken once the client's SETTINGS arrive. */
  trackH2Session(session: TrackedSession, socket?: net.Socket): void {
    this.h2Sessions.add(session);
    session.once("close", () => this.h2Sessions.delete(session));
    const entry = socket && this.tracked.get(socket);
    if (!entry) return;
    entry.session = session;
    this.bySession.set(session, entry);
    session.once("remoteSettings", () => (entry.handshaken = true));
  }

  /** Counts a request until its response (or HTTP/2 stream) is closed. */
  trackRequest(response: http.ServerResponse): void {
    this.active++;
    response.once("close", () => this.requestClosed());
  }

  private requestClosed(): void {
    this.active--;
    if (this.active === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /**
   * An HTTP/2 stream: its connection is not idle while it is open. Unless
   * the call streams its requests (`clientStreaming`), the request must have
   * fully arrived within the request timeout, else the stream is reset
   * (CANCEL): a client that sends HEADERS and never ends its request holds
   * the call's state for nothing.
   */
  trackStream(stream: TrackedStream, clientStreaming = false): void {
    this.active++;
    const entry = stream.h2 && this.bySession.get(stream.h2);
    if (entry) entry.streams++;
    let cancel: (() => void) | undefined;
    if (this.limits.requestTimeoutMs > 0 && !clientStreaming && !stream.endAfterHeaders) {
      cancel = this.clock.setTimeout(() => {
        if (stream.closed || stream.destroyed || stream.state.remoteClose) return;
        stream.close(CANCEL);
        this.event("request_timeout", entry?.address ?? "unknown");
      }, this.limits.requestTimeoutMs);
      // The request has fully arrived once it was read to its end: a
      // long-lived call (Subscribe) then holds no timer for the rest of its life.
      stream.once("end", () => {
        cancel?.();
        cancel = undefined;
      });
    }
    // One listener for everything the stream's end settles.
    stream.once("close", () => {
      cancel?.();
      this.requestClosed();
      if (entry && --entry.streams === 0) entry.idleSince = this.clock.now();
    });
  }

  get activeRequests(): number {
    return this.active;
  }

  /** Resolves when no request is in flight, or after `timeoutMs` (true if it became idle). */
  whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.active === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== wake);
        resolve(false);
      }, timeoutMs);
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(wake);
    });
  }

  /** GOAWAY to every HTTP/2 session, and the end of every HTTP/1.1 socket; stops reaping. */
  closeAll(): void {
    this.stopReaper();
    for (const session of this.h2Sessions) session.close();
    for (const socket of this.h1Sockets) socket.destroy();
    // Connections that never showed a protocol.
    for (const entry of this.tracked.values()) if (!entry.handshaken && !entry.session) entry.socket.destroy();
  }

  destroyAll(): void {
    this.stopReaper();
    for (const session of this.h2Sessions) session.destroy();
    for (const socket of this.h1Sockets) socket.destroy();
    for (const entry of this.tracked.values()) entry.socket.destroy();
  }

  /** Stops the reaper (the server closes). */
  close(): void {
    this.stopReaper();
  }

  private reap(): void {
    const now = this.clock.now();
    const { handshakeTimeoutMs, idleTimeoutMs } = this.limits;
    for (const entry of this.tracked.values()) {
      if (entry.closing) continue;
      if (!entry.handshaken) {
        if (handshakeTimeoutMs > 0 && now - entry.acceptedAt > handshakeTimeoutMs) {
          entry.closing = true;
          entry.socket.destroy();
          this.event("handshake_timeout", entry.address);
        }
        continue;
      }
      if (entry.session && entry.streams === 0 && idleTimeoutMs > 0 && now - entry.idleSince > idleTimeoutMs) {
        entry.closing = true;
        // GOAWAY: a stream the client opens meanwhile is refused and retried elsewhere; the socket closes once none is open.
        entry.session.close();
        this.event("idle_timeout", entry.address);
      }
    }
  }

  private event(kind: ConnectionEventKind, address: string): void {
    this.counts[kind]++;
    this.onEvent?.(kind, address);
  }
}
