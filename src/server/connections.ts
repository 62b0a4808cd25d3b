import type http from "node:http";
import type http2 from "node:http2";
import type net from "node:net";

/**
 * The connections and requests of one server, so shutdown can wait for the
 * last response to be written and then close what is left, without sleeping
 * a fixed time: HTTP/2 sessions get GOAWAY, idle HTTP/1.1 keep-alive sockets
 * are destroyed (the HTTP/1.1 server never listens itself, so Node's
 * closeAllConnections() does not know them).
 */
export class Connections {
  readonly h2Sessions = new Set<http2.ServerHttp2Session>();
  readonly h1Sockets = new Set<net.Socket>();
  private active = 0;
  private idleWaiters: Array<() => void> = [];

  trackH1Socket(socket: net.Socket): void {
    this.h1Sockets.add(socket);
    socket.once("close", () => this.h1Sockets.delete(socket));
  }

  trackH2Session(session: http2.ServerHttp2Session): void {
    this.h2Sessions.add(session);
    session.once("close", () => this.h2Sessions.delete(session));
  }

  /** Counts a request until its response (or HTTP/2 stream) is closed. */
  trackRequest(response: http.ServerResponse | http2.ServerHttp2Stream): void {
    this.active++;
    response.once("close", () => {
      this.active--;
      if (this.active === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    });
  }

  trackStream(stream: http2.ServerHttp2Stream): void {
    this.trackRequest(stream);
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

  /** GOAWAY to every HTTP/2 session, and the end of every HTTP/1.1 socket. */
  closeAll(): void {
    for (const session of this.h2Sessions) session.close();
    for (const socket of this.h1Sockets) socket.destroy();
  }

  destroyAll(): void {
    for (const session of this.h2Sessions) session.destroy();
    for (const socket of this.h1Sockets) socket.destroy();
  }
}
