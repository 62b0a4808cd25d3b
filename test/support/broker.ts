import { defaultBrokerConfig, type BrokerConfig } from "../../src/broker/config.js";
import { createSeqcastClient, type SeqcastClient } from "../../src/client/index.js";
import { createMemoryEngine } from "../../src/engine/memory.js";
import { startServer, type RunningServer } from "../../src/server/server.js";
import { testAuthenticate, testToken, type TestClaims } from "./tokens.js";

/** The protocols every wire-level claim is tested over. Connect runs on HTTP/1.1 to cover that path too. */
export const PROTOCOLS = [
  { name: "grpc", protocol: "grpc", httpVersion: "2" },
  { name: "connect (HTTP/1.1)", protocol: "connect", httpVersion: "1.1" },
  { name: "grpc-web (HTTP/1.1)", protocol: "grpc-web", httpVersion: "1.1" },
] as const;
export type ProtocolCase = (typeof PROTOCOLS)[number];
export const GRPC = PROTOCOLS[0];

/** An in-process broker on a free port, memory engine, TEST_SECRET tokens. */
export async function startBroker(overrides: Partial<BrokerConfig> = {}): Promise<RunningServer> {
  return startServer({
    // A short presence grace keeps "client gone" tests quick; tests of the grace set their own.
    config: { ...defaultBrokerConfig, presenceGraceMs: 300, ...overrides },
    engine: createMemoryEngine,
    port: 0,
    authenticate: await testAuthenticate(),
  });
}

export function clientFor(url: string, user: string, p: ProtocolCase = GRPC, claims?: TestClaims): SeqcastClient {
  return createSeqcastClient({ baseUrl: url, token: testToken(user, claims), protocol: p.protocol, httpVersion: p.httpVersion });
}
