import { parseArgs } from "node:util";
import { parseDuration } from "./parse.js";
import { mintToken } from "../tokens/mint.js";
import { loadOrCreateSecret } from "../tokens/secret.js";
import { parseArgsError, UsageError } from "./usage-error.js";

const HELP = `seqcast token: mint an access token (HS256 JWT) with the broker's secret

Usage:
  seqcast token --user NAME [--admin] [--rooms 'general,team.*'] [--publish P,…] [--subscribe P,…]
                [--ttl 24h] [--data-dir DIR]

Prints the token, and nothing else, on standard output: pass it as
'authorization: Bearer <token>' (seqcast chat --token, SEQCAST_TOKEN).

The secret is SEQCAST_JWT_SECRET if set, else DATA_DIR/jwt-secret, created (mode 0600)
if absent exactly as the broker does, so run this where the broker's data directory is.
A broker configured with SEQCAST_JWT_PUBLIC_KEY or SEQCAST_JWT_JWKS accepts only tokens
signed with the matching private key: mint those with the key's owner, not here.

Options:
  --user NAME       the identity (token 'sub'): 1-64 letters, digits, '_', '.' or '-'
  --admin           may call admin RPCs (ClearHistory)
  --rooms P,…       room patterns the user may publish to and read ('*' one segment,
                    '>' the rest, e.g. 'general,team.*,sports.>'); default: every room.
                    Inboxes (@user) are not affected: anyone may write to one, only its
                    owner may read it.
  --publish P,…     patterns for publishing (instead of --rooms for that side)
  --subscribe P,…   patterns for subscribing and reading (instead of --rooms for that side)
  --ttl D           lifetime, e.g. 30m, 24h, 7d (default 24h)
  --data-dir DIR    SEQCAST_DATA_DIR   the broker's data directory (default ./data)`;

/** `seqcast token`: prints one token on stdout; resolves with the exit code. */
export async function token(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        user: { type: "string" },
        admin: { type: "boolean" },
        rooms: { type: "string" },
        publish: { type: "string" },
        subscribe: { type: "string" },
        ttl: { type: "string" },
        "data-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (error) {
    throw parseArgsError(error, "token");
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!values.user) throw new UsageError("--user NAME is required");
  if (env.SEQCAST_JWT_PUBLIC_KEY || env.SEQCAST_JWT_JWKS) {
    const which = env.SEQCAST_JWT_PUBLIC_KEY ? "SEQCAST_JWT_PUBLIC_KEY" : "SEQCAST_JWT_JWKS";
    throw new UsageError(
      `${which} is set: the broker verifies RS256/ES256 tokens with a public key, so tokens must be minted by the owner of the private key, not with 'seqcast token'`,
    );
  }
  let jwt: string;
  try {
    const request = {
      user: values.user,
      admin: values.admin === true,
      rooms: patternList(values.rooms, "--rooms"),
      publish: patternList(values.publish, "--publish"),
      subscribe: patternList(values.subscribe, "--subscribe"),
      ttlMs: parseDuration(values.ttl ?? "24h", "--ttl"),
    };
    let secret: Uint8Array;
    if (env.SEQCAST_JWT_SECRET) {
      secret = new TextEncoder().encode(env.SEQCAST_JWT_SECRET);
    } else {
      const loaded = loadOrCreateSecret(values["data-dir"] ?? env.SEQCAST_DATA_DIR ?? "./data");
      if (loaded.created) console.error(`seqcast token: created ${loaded.path}; a broker using this data directory accepts the token`);
      if (loaded.warning) console.error(`seqcast token: warning: ${loaded.warning}`);
      secret = loaded.secret;
    }
    jwt = await mintToken(secret, request);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  console.log(jwt);
  return 0;
}

function patternList(text: string | undefined, flag: string): string[] | undefined {
  if (text === undefined) return undefined;
  const list = text.split(",").map((p) => p.trim()).filter((p) => p.length > 0);
  if (list.length === 0) throw new Error(`${flag}: no room patterns given (omit the flag to allow every room)`);
  return list;
}
