import { serve } from "./serve.js";
import { chat } from "./chat.js";
import { token } from "./token.js";
import { UsageError } from "./usage-error.js";
import { readFileSync } from "node:fs";

/** The package's version, from package.json (the sources run as they are, so it sits two levels up). */
function version(): string {
  return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

const USAGE = `seqcast: ordered pub/sub broker

Usage:
  seqcast serve [--port N] [--host H] [--engine memory] [limits…]   start a broker
  seqcast chat --user NAME [--url URL] [--room ROOM]               chat in the terminal
  seqcast token --user NAME [--admin] [--rooms P,…] [--ttl 24h]     mint an access token
  seqcast help                                                      this text
  seqcast --version                                                 the version

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
      case "--version":
      case "-V":
      case "version":
        console.log(`seqcast ${version()}`);
        return 0;
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.log(USAGE);
        return 0;
      default:
        console.error(`seqcast: unknown command "${command}"; the commands are serve, chat, token (see 'seqcast help')`);
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

