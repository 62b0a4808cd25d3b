import cluster from "node:cluster";
import { accessSync, constants, mkdirSync } from "node:fs";
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
import { TlsCertificate, type CertificateSummary } from "../server/tls.js";
import { checkSettings, resolveSettings, SECRET_ENV, settingFlags, settingsHelp, type ServeSettings } from "./settings.js";
import { parseArgsError, UsageError } from "./usage-error.js";
import { reportListening, runWorkers, workerCount } from "./workers.js";
import { createWebPage, DEV_TOKEN_TTL_MS } from "../server/web.js";
import { mintToken } from "../tokens/mint.js";
import { createLogger, setRootLogger, type Logger } from "../log/logger.js";

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
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { ...settingFlags(), help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw parseArgsError(error, "serve");
  }
  if (values.help) return undefined;
  try {
    const settings = resolveSettings(values as Record<string, string | boolean | undefined>, env);
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
  const logger = createLogger({ level: settings.logLevel, format: settings.logFormat });
  setRootLogger(logger);
  const usesDataDir = settings.engine === "sqlite" || (!env[SECRET_ENV] && !settings.jwtPublicKey && !settings.jwtJwks);
  if (usesDataDir) checkDataDir(settings.dataDir);
  // Tokens: the secret, a public key or JWKS, else a secret the broker keeps in its data directory.
  let auth;
  let authConfig;
  try {
    const keys = {
      [SECRET_ENV]: env[SECRET_ENV],
      SEQCAST_JWT_PUBLIC_KEY: settings.jwtPublicKey || undefined,
      SEQCAST_JWT_JWKS: settings.jwtJwks || undefined,
    };
    authConfig = authConfigFromEnv(keys, settings.dataDir);
    auth = await createAuthenticator(authConfig);
  } catch (error) {
    throw new UsageError(`authentication: ${(error as Error).message}`);
  }
  const secret = authConfig.secret;
  // Dev login mints with the HS256 secret; a broker verifying RS256/ES256 keys has none to mint with, and must not pretend.
  if (settings.devLogin && !secret)
    throw new UsageError("--dev-login needs the HS256 secret, but this broker verifies RS256/ES256 tokens; mint them with the private key's owner");
  // Read here, before any worker starts, so that a wrong file stops the command with one line.
  let certificate: TlsCertificate | undefined;
  if (settings.tlsCert) {
    try {
      certificate = TlsCertificate.load({ cert: settings.tlsCert, key: settings.tlsKey });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  // Once per command: by the primary of --workers, not by each worker.
  if (certificate && !cluster.isWorker) warnOfExpiry(certificate.summary, logger);
  // Several processes on one port: this one only supervises (see workers.ts).
  const workers = workerCount(settings.workers);
  if (workers > 1 && cluster.isPrimary) {
    const description = { engine: settings.engine, ...engineLocation(settings), ...(certificate ? { tls: certificate.summary } : {}), config: settings.broker };
    return runWorkers(workers, description, logger, { forwardHangup: certificate !== undefined });
  }
  const web = createWebPage({
    devLogin: settings.devLogin && secret ? (user) => mintToken(secret, { user, ttlMs: DEV_TOKEN_TTL_MS }) : undefined,
  });
  let server: RunningServer;
  try {
    server = await startServer({
      config: settings.broker,
      engine: engineFactory(settings),
      port: settings.port,
      host: settings.host,
      authenticate: (header) => auth.authenticate(header),
      web,
      metrics: settings.metrics,
      logger,
      connections: settings.connections,
      tls: certificate,
    });
  } catch (error) {
    if (error instanceof DatabaseLockedError) throw new UsageError(error.message);
    throw listenError(error, settings);
  }
  const engine = server.broker.engine;
  const logStatus = ({ status, reason }: { status: string; reason: string }) =>
    (status === "ok" ? logger.info.bind(logger) : logger.warn.bind(logger))({ engine: engine.name, reason }, `engine ${status}`);
  const offStatus = engine.onStatusChange?.(logStatus);
  const listening = {
    url: server.url,
    port: server.port,
    engine: settings.engine,
    ...engineLocation(settings),
    ...(certificate ? { tls: certificate.summary } : {}),
    ...(web.built ? { page: `${server.url}/` } : {}),
    ...(settings.devLogin ? { devLogin: true } : {}),
    ...(settings.metrics ? { metrics: `${server.url}/metrics` } : {}),
    config: settings.broker,
    connections: server.connectionLimits,
  };
  if (cluster.isWorker) reportListening(listening, logger);
  else logger.info(listening, "seqcast listening");
  if (!web.built && !cluster.isWorker)
    logger.warn({ dir: web.dir }, `seqcast chat page not built (no ${web.dir}index.html): run 'npm run build:web'; serving the API only`);
  const reload = certificate && (() => reloadCertificate(certificate, logger));
  if (reload) process.on("SIGHUP", reload);
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
      logger.info({ signal }, "seqcast shutting down");
      offStatus?.();
      server.close().then(resolve, resolve);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  if (reload) process.off("SIGHUP", reload);
  logger.info("seqcast stopped");
  // A worker's channel to its primary would keep it alive.
  if (cluster.isWorker) process.disconnect?.();
  return 0;
}

/** Words for the errno codes a user can do something about. */
const WHY: Record<string, string> = {
  EACCES: "permission denied",
  EPERM: "permission denied",
  ENOTDIR: "a file is in the way",
  EEXIST: "it is a file, not a directory",
  EROFS: "the file system is read-only",
  ENOSPC: "the disk is full",
};

/** The data directory exists (or can be made) and is readable and writable; else a one-line UsageError. */
function checkDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "";
    throw new UsageError(`cannot use the data directory ${dir}: ${WHY[code] ?? (error as Error).message}; pick another with --data-dir DIR`);
  }
}

/** Listening failures the user can fix, in one line; anything else stays a bug with its stack. */
function listenError(error: unknown, settings: ServeSettings): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE") return new UsageError(`port ${settings.port} is in use; pick another with --port N`);
  if (code === "EACCES") return new UsageError(`port ${settings.port} needs privileges this user lacks; pick another with --port N (1024 or above)`);
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND")
    return new UsageError(`cannot listen on ${settings.host}: no such address on this machine; pick another with --host H`);
  return error;
}

/** A certificate this close to its end is logged as a warning at start and at every reload. */
const EXPIRY_WARNING_MS = 14 * 24 * 3600 * 1000;

function warnOfExpiry(summary: CertificateSummary, logger: Logger): void {
  const left = Date.parse(summary.validTo) - Date.now();
  if (left <= 0) logger.warn({ subject: summary.subject, validTo: summary.validTo }, "tls certificate expired: clients will refuse it");
  else if (left < EXPIRY_WARNING_MS) logger.warn({ subject: summary.subject, validTo: summary.validTo }, "tls certificate expires soon");
}

/** SIGHUP: the certificate files again (a renewal); on failure the old certificate stays in use. */
function reloadCertificate(certificate: TlsCertificate, logger: Logger): void {
  try {
    const summary = certificate.reload();
    logger.info(summary, "tls certificate reloaded");
    warnOfExpiry(summary, logger);
  } catch (error) {
    logger.error({ error: (error as Error).message, subject: certificate.summary.subject }, "tls certificate not reloaded: still serving the previous one");
  }
}
