import { printable } from "./chat-format.js";

/**
 * What one line typed into `seqcast chat` asks for (COMMANDS in
 * chat-options.ts lists them for the user). Parsing is separate from doing,
 * so every form and every usage message is tested without a broker
 * (test/unit/chat-commands.test.ts); chat.ts carries the commands out.
 */
export type ChatCommand =
  /** A blank line: nothing. */
  | { kind: "none" }
  /** Text for the current room (a line starting with "//" sends it with one "/"). */
  | { kind: "say"; text: string }
  /** A private message: `@user text` or `/dm user text`. */
  | { kind: "direct"; user: string; text: string }
  /** `/reply <seq> text`: an answer to message <seq> of the current room. */
  | { kind: "reply"; sequence: bigint; text: string }
  | { kind: "join"; room: string }
  | { kind: "leave"; room: string | undefined }
  | { kind: "room"; room: string }
  | { kind: "rooms" }
  /** `/history [room] [N]`: the arguments as typed (chat.ts checks N). */
  | { kind: "history"; args: string[] }
  | { kind: "who"; room: string | undefined }
  | { kind: "away" }
  | { kind: "back" }
  | { kind: "clear_history"; room: string }
  | { kind: "help" }
  | { kind: "quit" }
  /** A malformed or unknown command: the line to print; nothing is sent. */
  | { kind: "usage"; message: string };

/** The command on one input line (a trailing CR, as a Windows terminal sends it, is ignored). */
export function parseChatLine(raw: string): ChatCommand {
  const line = raw.replace(/\r$/, "");
  if (line.trim() === "") return { kind: "none" };
  if (line.startsWith("//")) return { kind: "say", text: line.slice(1) };
  if (line.startsWith("@")) {
    const dm = /^@(\S+)\s+(.+)$/.exec(line.trim());
    return dm ? { kind: "direct", user: dm[1]!, text: dm[2]! } : usage("@user <text> (a private message; nothing was sent)");
  }
  if (!line.startsWith("/")) return { kind: "say", text: line };

  const [command = "", ...args] = line.slice(1).trim().split(/\s+/);
  switch (command) {
    case "join":
      return args.length === 1 ? { kind: "join", room: args[0]! } : usage("/join <room>");
    case "leave":
      return args.length <= 1 ? { kind: "leave", room: args[0] } : usage("/leave [room]");
    case "room":
      return args.length === 1 ? { kind: "room", room: args[0]! } : usage("/room <room>");
    case "rooms":
      return { kind: "rooms" };
    case "history":
      return { kind: "history", args };
    case "who":
      return args.length <= 1 ? { kind: "who", room: args[0] } : usage("/who [room]");
    case "reply": {
      const match = /^\/reply\s+#?(\d+)\s+(.+)$/.exec(line.trim());
      return match
        ? { kind: "reply", sequence: BigInt(match[1]!), text: match[2]! }
        : usage("/reply <seq> <text> (answers message <seq> of the current room)");
    }
    case "dm": {
      const match = /^\/dm\s+(\S+)\s+(.+)$/.exec(line.trim());
      return match ? { kind: "direct", user: match[1]!, text: match[2]! } : usage("/dm <user> <text>");
    }
    case "away":
      return { kind: "away" };
    case "back":
      return { kind: "back" };
    case "clear_history":
      return args.length === 1 ? { kind: "clear_history", room: args[0]! } : usage("/clear_history <room>");
    case "help":
      return { kind: "help" };
    case "quit":
    case "exit":
      return { kind: "quit" };
    default:
      return { kind: "usage", message: `! unknown command /${printable(command)} (try /help)` };
  }
}

function usage(form: string): ChatCommand {
  return { kind: "usage", message: `! usage: ${form}` };
}
