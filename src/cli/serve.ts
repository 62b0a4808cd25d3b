import { parseArgs } from "node:util";
import {
  brokerConfigFromEnv,
  parseBytes,
  parseDuration,
  parsePositiveInt,
  type BrokerConfig,
} from "../broker/config.js";
import { createMemoryEngine } from "../engine/memory.js";
import type { Engine, EngineOptions } from "../engine/engine.js";
import { startServer } from "../server/server.js";
import { UsageError } from "./main.js";

const HELP = `seqcast serve: start a broker on one port (gRPC, Connect, gRPC-Web)

Options (each also read from the environment variable shown):
  --port N                 PORT                         listening port (default 8080)
  --host H                 SEQCAST_HOST                 listening address (default 127.0.0.1)
  --engine NAME            SEQCAST_ENGINE               storage engine: memory (default memory)
  --history-size N         SEQCAST_HISTORY_SIZE         messages kept per room (default 100)
  --history-ttl D          SEQCAST_HISTORY_TTL          max age of kept messages, 0 = none (default 24h)
  --max-message-bytes B    SEQCAST_MAX_MESSAGE_BYTES    max content+payload+attributes (default 64KiB)
  --max-rooms N            SEQCAST_MAX_ROOMS_PER_SESSION rooms per session (default 100)
  --heartbeat-interval D   SEQCAST_HEARTBEAT_INTERVAL   heartbeat on idle streams (default 15s)
  --session-queue N        SEQCAST_SESSION_QUEUE_LIMIT  events queued per slow subscriber before its
                                                        stream ends with RESOURCE_EXHAUSTED (default 10000)
Flags win over environment variables.`;

const ENGINES: Record<string, (options: EngineOptions) => Engine> = { memory: createMemoryEngine };

export async function serve(argv: string[], env = process.env): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      engine: { type: "string" },
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
    const portText = values.port ?? env.PORT ?? "8080";
    port = Number(portText);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: "${portText}" is not a port number`);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const engineName = values.engine ?? env.SEQCAST_ENGINE ?? "memory";
  const engine = ENGINES[engineName];
  if (!engine) throw new UsageError(`--engine: "${engineName}" is not one of ${Object.keys(ENGINES).join(", ")}`);

  const server = await startServer({ config, engine, port, host: values.host ?? env.SEQCAST_HOST ?? "127.0.0.1" });
  console.log(
    JSON.stringify({ msg: "seqcast listening", url: server.url, port: server.port, engine: engineName, config }),
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
