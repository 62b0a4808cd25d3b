import { parseArgs } from "node:util";
import {
  brokerConfigFromEnv,
  parseBytes,
  parseDuration,
  parseNonNegativeInt,
  parsePositiveInt,
  type BrokerConfig,
} from "../broker/config.js";
import { join } from "node:path";
import { createMemoryEngine } from "../engine/memory.js";
import { createSqliteEngine } from "../engine/sqlite.js";
import type { Engine, EngineOptions } from "../engine/engine.js";
import { authConfigFromEnv, createAuthenticator } from "../server/auth.js";
import { startServer } from "../server/server.js";
import { UsageError } from "./main.js";

const HELP = `seqcast serve: start a broker on one port (gRPC, Connect, gRPC-Web)

Options (each also read from the environment variable shown):
  --port N                 PORT                         listening port (default 8080)
  --host H                 SEQCAST_HOST                 listening address (default 127.0.0.1)
  --engine NAME            SEQCAST_ENGINE               sqlite (durable, embedded) or memory (default sqlite)
  --data-dir DIR           SEQCAST_DATA_DIR             where the sqlite engine keeps seqcast.db (default ./data)
  --sync MODE              SEQCAST_SQLITE_SYNC          sqlite durability: normal (a process crash loses
                                                        nothing acknowledged; a power loss may lose the last
                                                        commits) or full (survives power loss; slower) (default normal)
  --history-size N         SEQCAST_HISTORY_SIZE         messages kept per room (default 100)
  --history-ttl D          SEQCAST_HISTORY_TTL          max age of kept messages, 0 = none (default 24h)
  --max-message-bytes B    SEQCAST_MAX_MESSAGE_BYTES    max content+payload+attributes (default 64KiB)
  --max-rooms N            SEQCAST_MAX_ROOMS_PER_SESSION rooms per session (default 100)
  --heartbeat-interval D   SEQCAST_HEARTBEAT_INTERVAL   heartbeat on idle streams (default 15s)
  --session-queue N        SEQCAST_SESSION_QUEUE_LIMIT  events queued per slow subscriber before its
                                                        stream ends with RESOURCE_EXHAUSTED (default 10000)
  --dedupe-window D        SEQCAST_DEDUPE_WINDOW        how long a client_message_id dedupes retries (default 2m)
  --ack-deadline D         SEQCAST_ACK_DEADLINE         redeliver to durable subscribers after this (default 30s)
  --publish-rate N         SEQCAST_PUBLISH_RATE         publishes/s per user, 0 = unlimited (default 1000)
                           SEQCAST_PUBLISH_BURST        publishes per user above the rate (default 2000)
Authentication (every PubSubService call carries 'authorization: Bearer <JWT>'):
                           SEQCAST_JWT_SECRET           HS256 secret; when no key is configured, the broker
                                                        creates one in DATA_DIR/jwt-secret (mode 0600)
                           SEQCAST_JWT_PUBLIC_KEY       PEM public key file (RS256/ES256) instead
                           SEQCAST_JWT_JWKS             JWKS file (RS256/ES256) instead
Mint tokens with 'seqcast token --user NAME'.
Flags win over environment variables.`;

type EngineFactory = (options: EngineOptions) => Engine;

function engineFactory(name: string, dataDir: string, sync: string): EngineFactory {
  switch (name) {
    case "memory":
      return createMemoryEngine;
    case "sqlite":
      if (sync !== "normal" && sync !== "full") throw new UsageError(`--sync: "${sync}" is not one of normal, full`);
      return (options) => createSqliteEngine({ ...options, path: join(dataDir, "seqcast.db"), synchronous: sync });
    default:
      throw new UsageError(`--engine: "${name}" is not one of sqlite, memory`);
  }
}

export async function serve(argv: string[], env = process.env): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      engine: { type: "string" },
      "data-dir": { type: "string" },
      sync: { type: "string" },
      "dedupe-window": { type: "string" },
      "ack-deadline": { type: "string" },
      "publish-rate": { type: "string" },
      "history-size": { type: "string" },
      "history-ttl": { type: "string" },
      "max-message-bytes": { type: "string" },
      "max-rooms": { type: "string" },
      "heartbeat-interval": { type: "string" },
      "session-queue": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  let config: BrokerConfig;
  let port: number;
  try {
    config = brokerConfigFromEnv(env);
    if (values["history-size"]) config.historySize = parsePositiveInt(values["history-size"], "--history-size");
    if (values["history-ttl"]) config.historyTtlMs = parseDuration(values["history-ttl"], "--history-ttl");
    if (values["max-message-bytes"])
      config.maxMessageBytes = parseBytes(values["max-message-bytes"], "--max-message-bytes");
    if (values["max-rooms"]) config.maxRoomsPerSession = parsePositiveInt(values["max-rooms"], "--max-rooms");
    if (values["heartbeat-interval"])
      config.heartbeatIntervalMs = parseDuration(values["heartbeat-interval"], "--heartbeat-interval");
    if (values["session-queue"]) config.sessionQueueLimit = parsePositiveInt(values["session-queue"], "--session-queue");
    if (values["dedupe-window"]) config.dedupeWindowMs = parseDuration(values["dedupe-window"], "--dedupe-window");
    if (values["ack-deadline"]) config.ackDeadlineMs = parseDuration(values["ack-deadline"], "--ack-deadline");
    if (values["publish-rate"]) config.publishRate = parseNonNegativeInt(values["publish-rate"], "--publish-rate");
    const portText = values.port ?? env.PORT ?? "8080";
    port = Number(portText);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: "${portText}" is not a port number`);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const engineName = values.engine ?? env.SEQCAST_ENGINE ?? "sqlite";
  const dataDir = values["data-dir"] ?? env.SEQCAST_DATA_DIR ?? "./data";
  const engine = engineFactory(engineName, dataDir, values.sync ?? env.SEQCAST_SQLITE_SYNC ?? "normal");

  // Tokens: SEQCAST_JWT_SECRET, a public key or JWKS, else a secret the broker keeps in its data directory.
  let auth;
  try {
    auth = await createAuthenticator(authConfigFromEnv(env, dataDir));
  } catch (error) {
    throw new UsageError(`authentication: ${(error as Error).message}`);
  }
  const server = await startServer({
    config,
    engine,
    port,
    host: values.host ?? env.SEQCAST_HOST ?? "127.0.0.1",
    authenticate: (header) => auth.authenticate(header),
  });
  console.log(
    JSON.stringify({
      msg: "seqcast listening",
      url: server.url,
      port: server.port,
      engine: engineName,
      ...(engineName === "sqlite" ? { dataDir } : {}),
      config,
    }),
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      console.log(JSON.stringify({ msg: "seqcast shutting down", signal }));
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      server.close().then(resolve, resolve);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  console.log(JSON.stringify({ msg: "seqcast stopped" }));
  return 0;
}
