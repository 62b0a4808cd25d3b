import { serve } from "./serve.js";
import { chat } from "./chat.js";
import { token } from "./token.js";
import { UsageError } from "./usage-error.js";

const USAGE = `seqcast: ordered pub/sub broker

Usage:
  seqcast serve [--port N] [--host H] [--engine memory] [limits…]   start a broker
  seqcast chat --user NAME [--url URL] [--room ROOM]               chat in the terminal
  seqcast token --user NAME [--admin] [--rooms P,…] [--ttl 24h]     mint an access token
  seqcast help                                                      this text

Run 'seqcast <command> --help' for a command's options.`;

/** Runs one CLI command; resolves with the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "serve":
        return await serve(rest);
      case "chat":
        return await chat(rest);
      case "token":
        return await token(rest);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.log(USAGE);
        return 0;
      default:
        console.error(`seqcast: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`seqcast ${command}: ${error.message}`);
      return 2;
    }
    throw error;
  }
}

