import { createHmac } from "node:crypto";
import net from "node:net";
import { defaultBrokerConfig, type BrokerConfig } from "../../src/broker/config.js";
import { createSeqcastClient, type SeqcastClient } from "../../src/client/client.js";
import type { Subscription, SubscriptionEvent } from "../../src/client/subscription.js";
import { createMemoryEngine } from "../../src/engine/memory.js";
import { createAuthenticator } from "../../src/server/auth.js";
import { startServer, type Authenticate, type RunningServer } from "../../src/server/server.js";

/** The protocols every wire-level claim is tested over. Connect runs on HTTP/1.1 to cover that path too. */
export const PROTOCOLS = [
  { name: "grpc", protocol: "grpc", httpVersion: "2" },
  { name: "connect (HTTP/1.1)", protocol: "connect", httpVersion: "1.1" },
  { name: "grpc-web (HTTP/1.1)", protocol: "grpc-web", httpVersion: "1.1" },
] as const;
export type ProtocolCase = (typeof PROTOCOLS)[number];

/** The HS256 secret of every test broker (spawned ones get it as SEQCAST_JWT_SECRET). */
export const TEST_SECRET = "seqcast-test-secret-not-for-production";

export interface TestClaims {
  admin?: boolean;
  publish?: string[];
  subscribe?: string[];
  /** Seconds from now; negative = already expired. */
  expiresIn?: number;
  secret?: string;
  alg?: string;
}

const b64url = (value: string | Buffer) => Buffer.from(value).toString("base64url");

/**
 * A signed HS256 JWT, built by hand with node:crypto rather than the
 * broker's own library, so tests also check interoperability.
 */
export function testToken(user: string, claims: TestClaims = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: claims.alg ?? "HS256", typ: "JWT" }));
  const seqcast: Record<string, unknown> = {};
  if (claims.admin) seqcast.admin = true;
  if (claims.publish) seqcast.publish = claims.publish;
  if (claims.subscribe) seqcast.subscribe = claims.subscribe;
  const payload = b64url(JSON.stringify({ sub: user, iat: now, exp: now + (claims.expiresIn ?? 3600), seqcast }));
  const signature = createHmac("sha256", claims.secret ?? TEST_SECRET).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${signature}`;
}

/** The broker's authentication with TEST_SECRET. */
export async function testAuthenticate(): Promise<Authenticate> {
  const auth = await createAuthenticator({ secret: new TextEncoder().encode(TEST_SECRET) });
  return (header) => auth.authenticate(header);
}

export async function startBroker(overrides: Partial<BrokerConfig> = {}): Promise<RunningServer> {
  return startServer({
    // A short presence grace keeps "client gone" tests quick; tests of the grace set their own.
    config: { ...defaultBrokerConfig, presenceGraceMs: 300, ...overrides },
    engine: createMemoryEngine,
    port: 0,
    authenticate: await testAuthenticate(),
  });
}

export function clientFor(url: string, user: string, p: ProtocolCase, claims?: TestClaims): SeqcastClient {
  return createSeqcastClient({ baseUrl: url, token: testToken(user, claims), protocol: p.protocol, httpVersion: p.httpVersion });
}

/** Records everything a subscription tells its application. */
export class Recorder {
  readonly events: SubscriptionEvent[] = [];
  constructor(readonly subscription: Subscription) {
    subscription.on((event) => this.events.push(event));
  }
  messages(room?: string) {
    return this.events.flatMap((e) => (e.type === "message" && (!room || e.room === room) ? [e.message] : []));
  }
  contents(room?: string): string[] {
    return this.messages(room).map((m) => m.content);
  }
  sequences(room?: string): number[] {
    return this.messages(room).map((m) => Number(m.sequence));
  }
  ofType<T extends SubscriptionEvent["type"]>(type: T): Extract<SubscriptionEvent, { type: T }>[] {
    return this.events.filter((e): e is Extract<SubscriptionEvent, { type: T }> => e.type === type);
  }
  /** Resolves once `predicate` holds; rejects after `timeoutMs` with what was seen. */
  async until(predicate: (r: Recorder) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    await eventually(() => predicate(this), () => `${what} (saw ${this.summary()})`, timeoutMs);
  }
  subscribedTo(room: string): Promise<void> {
    return this.until((r) => r.ofType("subscribed").some((e) => e.room === room), `subscribed to ${room}`);
  }
  summary(): string {
    const counts = new Map<string, number>();
    for (const e of this.events) counts.set(e.type, (counts.get(e.type) ?? 0) + 1);
    return JSON.stringify(Object.fromEntries(counts));
  }
}

export async function eventually(check: () => boolean, what: string | (() => string), timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "string" ? what : what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A TCP proxy in front of the broker whose connections can be cut, to
 * simulate a network failure under a live client.
 */
export interface CuttableProxy {
  url: string;
  cuts: number;
  /** Destroys every connection through the proxy. */
  cut(): void;
  /** Later connections go to this port (e.g. a restarted broker). */
  retarget(port: number): void;
  /** While blocked, new connections are dropped at once (the network is down). */
  blocked: boolean;
  close(): Promise<void>;
}

export async function startCuttableProxy(targetPort: number): Promise<CuttableProxy> {
  const sockets = new Set<net.Socket>();
  const state = { cuts: 0, port: targetPort, blocked: false };
  const server = net.createServer((client) => {
    if (state.blocked) {
      client.destroy();
      return;
    }
    const upstream = net.connect(state.port, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get cuts() {
      return state.cuts;
    },
    get blocked() {
      return state.blocked;
    },
    set blocked(value: boolean) {
      state.blocked = value;
    },
    retarget(port: number) {
      state.port = port;
    },
    cut() {
      state.cuts++;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
