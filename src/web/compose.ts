import { roomNameError, userNameError } from "../names/rooms.js";

// What a line typed into the page's message box asks for. Pure, so the
// rules are unit-tested (test/unit/web-format.test.ts) and the same as the
// terminal chat's: `@bob text` is private, `@bob` alone is a mistake, not a
// public message.

export type Composed =
  | { kind: "message"; text: string }
  | { kind: "direct"; user: string; text: string }
  | { kind: "join"; room: string }
  | { kind: "leave" }
  | { kind: "away" }
  | { kind: "back" }
  | { kind: "nothing" }
  | { kind: "error"; message: string };

export const COMMAND_HELP = "/join ROOM, /leave, /away, /back, @name text for a private message; start with // to send a line beginning with /";

export function compose(line: string): Composed {
  const text = line.trim();
  if (text === "") return { kind: "nothing" };
  if (text.startsWith("//")) return { kind: "message", text: text.slice(1) };
  if (text.startsWith("@")) {
    const match = /^@(\S+)(?:\s+([\s\S]+))?$/.exec(text);
    const user = match?.[1] ?? "";
    const badUser = userNameError(user);
    if (badUser) return { kind: "error", message: `@${user}: ${badUser}` };
    if (!match?.[2]) return { kind: "error", message: `Write the message after @${user}, e.g. "@${user} hello".` };
    return { kind: "direct", user, text: match[2] };
  }
  if (!text.startsWith("/")) return { kind: "message", text };
  const [command = "", ...args] = text.slice(1).split(/\s+/);
  switch (command) {
    case "join": {
      if (args.length !== 1) return { kind: "error", message: "Usage: /join ROOM" };
      const problem = roomNameError(args[0]!);
      return problem ? { kind: "error", message: `Room ${problem}` } : { kind: "join", room: args[0]! };
    }
    case "leave":
      return { kind: "leave" };
    case "away":
      return { kind: "away" };
    case "back":
      return { kind: "back" };
    default:
      return { kind: "error", message: `Unknown command /${command}. Commands: ${COMMAND_HELP}.` };
  }
}
