import { join } from "node:path";
import { parseArgs } from "node:util";
import { createMemoryEngine } from "../engine/memory.js";
import { createSqliteEngine } from "../engine/sqlite.js";
import type { Engine, EngineOptions } from "../engine/engine.js";
import { authConfigFromEnv, createAuthenticator } from "../server/auth.js";
import { startServer } from "../server/server.js";
import { resolveSettings, SECRET_ENV, settingFlags, settingsHelp, type ServeSettings } from "./settings.js";
import { UsageError } from "./usage-error.js";

const HELP = `seqcast serve: start a broker on one port (gRPC, Connect, gRPC-Web)

Usage: seqcast serve [options]

Options (each also read from the environment variable shown; flags win):
${settingsHelp()}

Authentication: every PubSubService call carries 'authorization: Bearer <JWT>'.
HS256 tokens are verified with ${SECRET_ENV} (environment only) or, when it is
unset and no key file is given, with a secret the broker creates in
DATA_DIR/jwt-secret (mode 0600). Mint tokens with 'seqcast token --user NAME'.`;

type EngineFactory = (options: EngineOptions) => Engine;

function engineFactory(settings: ServeSettings): EngineFactory {
  switch (settings.engine) {
    case "memory":
      return createMemoryEngine;
    case "sqlite":
      return (options) =>
        createSqliteEngine({ ...options, path: join(settings.dataDir, "seqcast.db"), synchronous: settings.sync });
  }
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
    return resolveSettings(values as Record<string, string | undefined>, env);
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
  const server = await startServer({
    config: settings.broker,
    engine: engineFactory(settings),
    port: settings.port,
    host: settings.host,
    authenticate: (header) => auth.authenticate(header),
  });
  console.log(
    JSON.stringify({
      msg: "seqcast listening",
      url: server.url,
      port: server.port,
      engine: settings.engine,
      ...(settings.engine === "sqlite" ? { dataDir: settings.dataDir } : {}),
      config: settings.broker,
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
