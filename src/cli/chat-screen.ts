import readline from "node:readline";
import type { Message } from "../../gen/es/seqcast/v1/types_pb.js";
import { isInbox } from "../names/rooms.js";
import { messageLine, Paint } from "./chat-format.js";

/** Where the chat reads lines and prints events: the terminal, or a test's streams. */
export interface ChatIO {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream & { isTTY?: boolean };
}

/**
 * The chat's side of the terminal: the `> ` prompt and the lines printed
 * above it. Events arrive while the user is typing, so on a terminal each
 * line is printed above the prompt without losing the half-typed line;
 * piped input and output stay plain lines, in colour only where Paint allows.
 */
export class ChatScreen {
  readonly paint: Paint;
  private readonly interactive: boolean;
  /** Set while lines are read: only then is there a prompt to keep. */
  private rl: readline.Interface | undefined;

  constructor(
    private readonly io: ChatIO,
    env: NodeJS.ProcessEnv,
  ) {
    this.interactive = Boolean(io.input.isTTY && io.output.isTTY);
    this.paint = Paint.for(io.output, env);
  }

  /** Starts reading lines; the caller listens to the interface's `line`, `close` and `SIGINT`. */
  open(): readline.Interface {
    const rl = readline.createInterface({
      input: this.io.input,
      output: this.interactive ? this.io.output : undefined,
      terminal: this.interactive,
    });
    this.rl = rl;
    rl.setPrompt("> ");
    return rl;
  }

  /** Stops reading lines; anything printed after this is a plain line (there is no prompt to keep). */
  close(): void {
    const rl = this.rl;
    this.rl = undefined;
    rl?.close();
  }

  print(line: string): void {
    const text = this.paint.line(line);
    if (this.interactive && this.rl) {
      // Keep what the user is typing: clear the prompt line, print, redraw it below.
      readline.cursorTo(this.io.output, 0);
      readline.clearLine(this.io.output, 0);
      this.io.output.write(`${text}\n`);
      this.rl.prompt(true);
    } else {
      this.io.output.write(`${text}\n`);
    }
  }

  /** Shows the prompt again once a line has been handled. */
  prompt(): void {
    this.rl?.prompt(true);
  }

  /**
   * A message of `room`, tagged by where it belongs: a private message, the
   * current room (just its number) or another joined room (room#number).
   * `late`: see messageLine.
   */
  message(room: string, message: Message, current: string | undefined, late?: ReadonlyArray<{ room: string; sequence: bigint }>): void {
    this.print(messageLine(message, isInbox(room) ? "dm" : room === current ? "current" : "other", this.paint, undefined, late));
  }
}
