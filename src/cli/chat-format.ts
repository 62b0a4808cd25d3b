import { Code, ConnectError } from "@connectrpc/connect";
import { PresenceState } from "../../gen/es/seqcast/v1/types_pb.js";

// How `seqcast chat` prints what it receives.

/** `! <code>: <message>`, the code as the lower-case gRPC name (invalid_argument). */
export function errorLine(error: unknown): string {
  const e = ConnectError.from(error);
  return `! ${codeName(e.code)}: ${e.rawMessage}`;
}

function codeName(code: Code): string {
  const name = Code[code] ?? String(code);
  return name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
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

