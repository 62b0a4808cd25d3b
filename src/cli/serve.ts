import cluster from "node:cluster";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createMemoryEngine } from "../engine/memory.js";
import { createRedisEngine } from "../engine/redis.js";
import { redactUrl } from "../engine/redis-connection.js";
import { DatabaseLockedError } from "../engine/sqlite-lock.js";
import { createSqliteEngine } from "../engine/sqlite.js";
import type { Engine, EngineOptions } from "../engine/engine.js";
import { authConfigFromEnv, createAuthenticator } from "../server/auth.js";
import { startServer, type RunningServer } from "../server/server.js";
import { checkSettings, resolveSettings, SECRET_ENV, settingFlags, settingsHelp, type ServeSettings } from "./settings.js";
import { UsageError } from "./usage-error.js";
import { reportListening, runWorkers, workerCount } from "./workers.js";

const HELP = `seqcast serve: start a broker on one port (gRPC, Connect, gRPC-Web)

Usage: seqcast serve [options]

Options (each also read from the environment variable shown; flags win):
${settingsHelp()}

Authentication: every PubSubService call carries 'authorization: Bearer <JWT>'.
HS256 tokens are verified with ${SECRET_ENV} (environment only) or, when it is
unset and no key file is given, with a secret the broker creates in
DATA_DIR/jwt-secret (mode 0600). Mint tokens with 'seqcast token --user NAME'.
Several nodes (--engine redis) must verify with the same key.`;

type EngineFactory = (options: EngineOptions) => Engine;

function engineFactory(settings: ServeSettings): EngineFactory {
  switch (settings.engine) {
    case "memory":
      return createMemoryEngine;
    case "sqlite":
      return (options) =>
        createSqliteEngine({ ...options, path: join(settings.dataDir, "seqcast.db"), synchronous: settings.sync });
    case "redis":
      return (options) =>
        createRedisEngine({
          ...options,
          url: settings.redisUrl,
          prefix: settings.redisPrefix,
          presenceTtlMs: settings.redisPresenceTtlMs,
        });
  }
}

/** Where the engine keeps its data, for the log line. */
function engineLocation(settings: ServeSettings): Record<string, string> {
  if (settings.engine === "sqlite") return { dataDir: settings.dataDir };
  if (settings.engine === "redis") return { redis: redactUrl(settings.redisUrl), prefix: settings.redisPrefix };
  return {};
}

/** Parses the command line and environment; undefined means --help. Every mistake is a UsageError. */
export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv): ServeSettings | undefined {
  try {
    const { values } = parseArgs({
      args: argv,
      options: { ...settingFlags(), help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    });
    if (values.help) return undefined;
    const settings = resolveSettings(values as Record<string, string | undefined>, env);
    checkSettings(settings);
    return settings;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export async function serve(argv: string[], env = process.env): Promise<number> {
  const settings = parseServeArgs(argv, env);
  if (!settings) {
    console.log(HELP);
    return 0;
  }
  // Tokens: the secret, a public key or JWKS, else a secret the broker keeps in its data directory.
  let auth;
  try {
    const keys = {
      [SECRET_ENV]: env[SECRET_ENV],
      SEQCAST_JWT_PUBLIC_KEY: settings.jwtPublicKey || undefined,
      SEQCAST_JWT_JWKS: settings.jwtJwks || undefined,
    };
    auth = await createAuthenticator(authConfigFromEnv(keys, settings.dataDir));
  } catch (error) {
    throw new UsageError(`authentication: ${(error as Error).message}`);
  }
  // Several processes on one port: this one only supervises (see workers.ts).
  const workers = workerCount(settings.workers);
  if (workers > 1 && cluster.isPrimary) {
    return runWorkers(workers, { engine: settings.engine, ...engineLocation(settings), config: settings.broker });
  }
  let server: RunningServer;
  try {
    server = await startServer({
      config: settings.broker,
      engine: engineFactory(settings),
      port: settings.port,
      host: settings.host,
      authenticate: (header) => auth.authenticate(header),
    });
  } catch (error) {
    if (error instanceof DatabaseLockedError) throw new UsageError(error.message);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE" || code === "EACCES")
      throw new UsageError(`cannot listen on ${settings.host}:${settings.port} (${code}): choose another --port or stop what uses it`);
    throw error;
  }
  const engine = server.broker.engine;
  const logStatus = ({ status, reason }: { status: string; reason: string }) =>
    console.log(JSON.stringify({ msg: `engine ${status}`, engine: engine.name, reason }));
  const offStatus = engine.onStatusChange?.(logStatus);
  const listening = {
    url: server.url,
    port: server.port,
    engine: settings.engine,
    ...engineLocation(settings),
    config: settings.broker,
  };
  if (cluster.isWorker) reportListening(listening);
  else console.log(JSON.stringify({ msg: "seqcast listening", ...listening }));
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      // A second Ctrl-C kills a broker at once. Not a worker: Ctrl-C reaches it and its
      // primary, which passes it on as SIGTERM; the primary escalates if need be.
      if (!cluster.isWorker) {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
      }
      if (stopping) return;
      stopping = true;
      console.log(JSON.stringify({ msg: "seqcast shutting down", signal, ...(cluster.isWorker ? { pid: process.pid } : {}) }));
      offStatus?.();
      server.close().then(resolve, resolve);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  console.log(JSON.stringify({ msg: "seqcast stopped", ...(cluster.isWorker ? { pid: process.pid } : {}) }));
  // A worker's channel to its primary would keep it alive.
  if (cluster.isWorker) process.disconnect?.();
  return 0;
}
