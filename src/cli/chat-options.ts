import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { roomNameError, userNameError } from "../names/rooms.js";
import type { Protocol } from "../client/index.js";
import { mintToken } from "../tokens/mint.js";
import { SECRET_FILE } from "../tokens/secret.js";
import { parseArgsError, UsageError } from "./usage-error.js";

// The command line of `seqcast chat`: options, help, and where its token comes from.

const DEFAULT_URL = "http://127.0.0.1:8080";
const DEFAULT_DEVICE = "cli";
export const DEFAULT_HISTORY = 20;
/** Messages shown from before a join. */
export const BACKLOG = 10;
/** Idle time after which the chat marks its user away. */
export const AWAY_AFTER_MS = 5 * 60 * 1000;
const PROTOCOLS: Protocol[] = ["grpc", "connect", "grpc-web"];

export const COMMANDS = `Commands:
  /join <room>          join a room and make it the current room
  /leave [room]         leave a room (default: the current room)
  /room <room>          make another joined room the current room
  /rooms                list joined rooms, marking the current one
  /history [room] [N]   the last N messages of a room, oldest first (default: current room, 20)
  /who [room]           who is present in a room (default: current room)
  /reply <seq> <text>   answer message <seq> of the current room: shown as (re #seq), and
                        after it for everyone; a message shown before something it follows
                        (which did not arrive in time) says so
  /dm <user> <text>     a private message to a user (also: @user text); ones sent to you
                        while you were away arrive when you are back (per --device)
  /away, /back          set your presence to away or back online (idle 5 min = away)
  /clear_history <room> delete a room's history, starting a new epoch (admins)
  /help                 this list
  /quit                 leave (end of input and Ctrl-C do the same)
Any other line is sent to the current room; start it with // to send a line that begins with /.`;

export const HELP = `seqcast chat: chat in the terminal, one line per message

Usage:
  seqcast chat --user NAME [--token JWT | --admin] [--url URL] [--room ROOM] [--device LABEL] [--protocol P]

Options:
  --user NAME      your user name: 1-64 letters, digits, '_', '.' or '-' (required)
  --token JWT      your token (default $SEQCAST_TOKEN; get one with 'seqcast token --user NAME').
                   Without one, on the broker's machine, chat mints its own from
                   $SEQCAST_JWT_SECRET or the broker's data directory (--data-dir, default ./data)
  --admin          with a self-minted token: include the admin role
  --data-dir DIR   the broker's data directory, for a self-minted token
  --url URL        broker URL (default $SEQCAST_URL, else ${DEFAULT_URL}); a broker started
                   with 'seqcast serve --port 9000' is http://127.0.0.1:9000
  --room ROOM      room to join at start
  --device LABEL   device label others see in /who (default "${DEFAULT_DEVICE}"); also names this
                   device's place in your private messages (subscriber ${inboxSubscriber("LABEL")})
  --protocol P     ${PROTOCOLS.join(", ")} (default grpc)

Reads commands and messages from standard input (a terminal or a pipe) and
prints one line per event on standard output (in colour on a terminal,
unless NO_COLOR is set); times are local:
  14:05 [12] bob: hi             message in the current room
  14:05 [random#3] bob: hi       message in another joined room
  14:05 [dm] bob: hi             a private message to you (sent ones: [dm → bob] hi)
  * bob joined general           presence, joins, connection state
  ~ pending: hi                  typed while the broker is unreachable: sent once it is back
  ! invalid_argument: room: ...  errors (the chat keeps running)
Joining a room shows its last ${BACKLOG} messages and who is already there.

${COMMANDS}`;

export interface ChatOptions {
  user: string;
  url: string;
  room?: string;
  device: string;
  protocol: Protocol;
  token: string;
  /** With a self-minted token: include the admin role. */
  admin: boolean;
  /** The broker's data directory, for a self-minted token. */
  dataDir: string;
}

/** Parses the command line; undefined means --help. Every mistake is a UsageError. */
export function parseChatArgs(argv: string[], env: NodeJS.ProcessEnv): ChatOptions | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        user: { type: "string", short: "u" },
        url: { type: "string" },
        room: { type: "string" },
        device: { type: "string" },
        protocol: { type: "string" },
        token: { type: "string" },
        admin: { type: "boolean" },
        "data-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw parseArgsError(error, "chat");
  }
  if (values.help) return undefined;

  if (values.user === undefined) throw new UsageError("--user NAME is required");
  const user = values.user;
  const url = values.url ?? (env.SEQCAST_URL || DEFAULT_URL); // set but empty = unset
  const device = values.device ?? DEFAULT_DEVICE;
  const protocol = (values.protocol ?? "grpc") as Protocol;
  const badUser = userNameError(user);
  if (badUser) throw new UsageError(`--user: ${badUser}`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`--url: "${url}" is not a URL (e.g. ${DEFAULT_URL})`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
    throw new UsageError(`--url: "${url}" must start with http:// or https://`);
  const badRoom = values.room === undefined ? null : roomNameError(values.room);
  if (badRoom) throw new UsageError(`--room: ${badRoom}`);
  const deviceBytes = Buffer.byteLength(device, "utf8");
  if (deviceBytes > 64) throw new UsageError(`--device: ${deviceBytes} bytes, at most 64 allowed`);
  if (!PROTOCOLS.includes(protocol))
    throw new UsageError(`--protocol: "${protocol}" is not one of ${PROTOCOLS.join(", ")}`);
  const token = values.token ?? (env.SEQCAST_TOKEN || undefined);
  return {
    user,
    url: url.replace(/\/+$/, ""),
    room: values.room,
    device,
    protocol,
    token: token ?? "",
    admin: values.admin === true,
    dataDir: values["data-dir"] ?? env.SEQCAST_DATA_DIR ?? "./data",
  };
}

/**
 * A token for the chat: the one given, else one minted with the broker's own
 * secret (possible only where that secret is readable: its machine).
 */
export async function chatToken(options: ChatOptions, env: NodeJS.ProcessEnv): Promise<string> {
  if (options.token) return options.token;
  let secret: Uint8Array;
  if (env.SEQCAST_JWT_SECRET) {
    secret = new TextEncoder().encode(env.SEQCAST_JWT_SECRET);
  } else {
    const path = join(options.dataDir, SECRET_FILE);
    try {
      secret = readFileSync(path);
    } catch {
      throw new UsageError(
        `no token: pass --token (mint one with 'seqcast token --user ${options.user}' on the broker's machine); ${path} is not readable here`,
      );
    }
  }
  return mintToken(secret, { user: options.user, admin: options.admin, ttlMs: 24 * 60 * 60 * 1000 });
}


/**
 * The durable subscriber of this device's inbox: the broker keeps what it
 * acknowledged, so private messages that arrive while the chat is not
 * running are delivered at its next start. One per device label, so that
 * two devices of a user each get them.
 */
export function inboxSubscriber(device: string): string {
  return `cli-${device.replace(/[^A-Za-z0-9_-]/g, "_")}`.slice(0, 64);
}
