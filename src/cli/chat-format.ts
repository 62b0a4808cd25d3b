import { Code, ConnectError } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Message } from "../../gen/es/seqcast/v1/types_pb.js";
import { PresenceState } from "../../gen/es/seqcast/v1/types_pb.js";

// How `seqcast chat` prints what it receives: one line per event, with the
// local time of each message, in colour on a terminal.

/** `! <code>: <message>`, the code as the lower-case gRPC name (invalid_argument). */
export function errorLine(error: unknown): string {
  const e = ConnectError.from(error);
  return `! ${codeName(e.code)}: ${e.rawMessage}`;
}

function codeName(code: Code): string {
  const name = Code[code] ?? String(code);
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
}

/** Why the broker cannot be reached, in words (the runtime says `connect ECONNREFUSED 127.0.0.1:8080`). */
export function unreachableReason(error: ConnectError | undefined, fallback: string): string {
  const text = error?.rawMessage ?? fallback;
  if (/ECONNREFUSED/.test(text)) return "connection refused: is the broker running?";
  if (/ENOTFOUND|EAI_AGAIN/.test(text)) return "no such host";
  if (/ETIMEDOUT|timed out/i.test(text)) return "no answer";
  if (/ECONNRESET|socket hang up|ended the stream/i.test(text)) return "the connection was cut";
  if (/shutting down/.test(text)) return "the broker is restarting";
  return text;
}

/** Control characters from other users must not drive our terminal: show them escaped. */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g, (c) =>
    c === "\n" ? "\\n" : c === "\r" ? "\\r" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

export const plural = (n: number | bigint, word: string) => `${n} ${word}${n === 1 || n === 1n ? "" : "s"}`;

export const STATE_NAMES: Partial<Record<PresenceState, string>> = {
  [PresenceState.ONLINE]: "online",
  [PresenceState.AWAY]: "away",
  [PresenceState.OFFLINE]: "offline",
};

const pad = (n: number) => String(n).padStart(2, "0");

/** `14:05` today, `2026-03-01 14:05` on another day: local time. */
export function clock(date: Date, now: Date = new Date()): string {
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  return date.toDateString() === now.toDateString() ? time : `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time}`;
}

/**
 * ANSI colours, on only for a terminal and never when NO_COLOR is set to
 * anything (no-color.org): piped output stays plain text for scripts.
 */
export class Paint {
  constructor(readonly enabled: boolean) {}

  static for(output: { isTTY?: boolean }, env: NodeJS.ProcessEnv): Paint {
    return new Paint(Boolean(output.isTTY) && !env.NO_COLOR);
  }

  private wrap(code: string, text: string): string {
    return this.enabled ? `\x1b[${code}m${text}\x1b[0m` : text;
  }
  dim = (text: string) => this.wrap("2", text);
  bold = (text: string) => this.wrap("1", text);
  red = (text: string) => this.wrap("31", text);
  yellow = (text: string) => this.wrap("33", text);
  cyan = (text: string) => this.wrap("36", text);
  magenta = (text: string) => this.wrap("35", text);

  /** A user's name in a colour of its own, the same every time. */
  user(name: string): string {
    if (!this.enabled) return name;
    let hash = 0;
    for (const c of name) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
    return this.wrap(`1;${USER_COLOURS[hash % USER_COLOURS.length]}`, name);
  }

  /** A whole line by its first character: `*` news, `!` problems, `~` pending. */
  line(text: string): string {
    if (text.startsWith("! ")) return this.red(text);
    if (text.startsWith("~ ")) return this.yellow(text);
    if (text.startsWith("* ")) return this.cyan(text);
    return text;
  }
}

/** Blue, green, magenta, cyan, yellow, bright blue: readable on dark and light backgrounds. */
const USER_COLOURS = ["34", "32", "35", "36", "33", "94"];

/**
 * `14:05 [12] bob: hi` (current room), `14:05 [random#3] bob: hi` (another
 * joined room), `14:05 [dm] bob: hi` (a private message).
 */
/**
 * `late`: the message was released after the SDK's causal wait while these
 * dependencies (earlier messages it follows) had not arrived; the line says
 * so. A message that merely waited for them looks like any other.
 */
export function messageLine(
  message: Message,
  where: "current" | "other" | "dm",
  paint: Paint,
  now = new Date(),
  late?: ReadonlyArray<{ room: string; sequence: bigint }>,
): string {
  const time = paint.dim(clock(message.time ? timestampDate(message.time) : now, now));
  const tag = where === "dm" ? paint.magenta("[dm]") : paint.dim(`[${where === "current" ? "" : `${message.room}#`}${message.sequence}]`);
  const body =
    message.content.length > 0 || message.payload.length === 0
      ? printable(message.content)
      : `<${plural(message.payload.length, "byte")} of payload>`;
  // A dependency in the message's own room is only ever an explicit reply (the SDK's automatic ones skip it).
  const reply = message.dependencies.find((d) => d.room === message.room);
  const re = reply ? paint.dim(`(re #${reply.sequence}) `) : "";
  const mark = late && late.length > 0 ? ` ${paint.yellow(`(shown before ${late.map((d) => `${printable(d.room)}#${d.sequence}`).join(", ")}, which did not arrive in time)`)}` : "";
  return `${time} ${tag} ${paint.user(printable(message.sender))}: ${re}${body}${mark}`;
}
