/**
 * `seqcast chat` as a user runs it, for the CLI chat's end-to-end tests
 * (test/e2e/cli-chat*.test.ts): real processes driven through piped stdin,
 * asserted on the exact lines they print. Here once, so every file of those
 * tests starts, reads and kills the processes alike.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { fileURLToPath } from "node:url";
import { test as base } from "./fixtures.js";
import { TEST_SECRET } from "./tokens.js";
import { waitUntil } from "./wait.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const LINE_TIMEOUT_MS = 10_000;
/** A fresh process compiles the sources through tsx first: give it longer for its first line. */
export const START_TIMEOUT_MS = 30_000;
/** The local time that starts every message line: `14:05 ` today, `2026-03-01 14:05 ` before. */
const TIME = /^(\d{4}-\d{2}-\d{2} )?\d{2}:\d{2} (?=\[)/;

/** One `seqcast chat` process, with everything it printed kept for assertions. */
export class Cli {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = "";
  stderr = "";
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly name: string, args: string[]) {
    // The chat mints its own token with the broker's secret, as on the broker's machine.
    const env: NodeJS.ProcessEnv = { ...process.env, SEQCAST_JWT_SECRET: TEST_SECRET };
    delete env.SEQCAST_URL; // every test passes --url
    this.child = spawn(process.execPath, ["bin/seqcast.js", "chat", ...args], {
      cwd: ROOT,
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.child.stdout.setEncoding("utf8").on("data", (chunk: string) => (this.stdout += chunk));
    this.child.stderr.setEncoding("utf8").on("data", (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => this.child.on("exit", (code, signal) => resolve({ code, signal })));
    this.child.stdin.on("error", () => {}); // writing to a process we killed on purpose
  }

  /** Complete lines printed so far, without the local time that starts a message line (see `timed`). */
  lines(): string[] {
    return this.timed().map((line) => line.replace(TIME, ""));
  }

  /** Complete lines printed so far, as printed. */
  timed(): string[] {
    const lines = this.stdout.split("\n");
    lines.pop(); // a partial last line, or "" after the final newline
    return lines;
  }

  /** Marks the current end of the output, for waiting on lines printed after it. */
  mark(): number {
    return this.lines().length;
  }

  send(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  /** Resolves with the first line matching `pattern` (an exact string or a regex), from line index `from` on. */
  async waitFor(pattern: string | RegExp, { from = 0, timeoutMs = LINE_TIMEOUT_MS } = {}): Promise<string> {
    const matches = (line: string) => (typeof pattern === "string" ? line === pattern : pattern.test(line));
    const find = () => this.lines().slice(from).find(matches);
    await waitUntil(
      () => find() !== undefined || this.child.exitCode !== null,
      () => `${this.name}: a line matching ${String(pattern)}\n--- stdout ---\n${this.stdout}--- stderr ---\n${this.stderr}`,
      timeoutMs,
    );
    const found = find();
    if (found === undefined)
      throw new Error(`${this.name}: exited with ${this.child.exitCode} before printing a line matching ${String(pattern)}\n${this.stdout}${this.stderr}`);
    return found;
  }

  /** Sends a command and waits for the line that answers it. */
  async command(line: string, answer: string | RegExp): Promise<string> {
    const from = this.mark();
    this.send(line);
    return this.waitFor(answer, { from });
  }

  count(line: string): number {
    return this.lines().filter((l) => l === line).length;
  }

  async exitCode(timeoutMs = LINE_TIMEOUT_MS): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name}: still running after ${timeoutMs} ms\n${this.stdout}`)), timeoutMs);
    });
    try {
      return (await Promise.race([this.exited, timeout])).code;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }
}

/** CLI processes of the test, killed after it. */
export const test = base.extend<{
  /** A CLI process with the given arguments (nothing added). */
  cli: (name: string, args: string[]) => Cli;
  /** `seqcast chat --user NAME --url URL …`, resolved once its session is live. */
  start: (name: string, args?: string[], url?: string) => Promise<Cli>;
}>({
  cli: async ({}, use) => {
    const clis: Cli[] = [];
    await use((name, args) => {
      const cli = new Cli(name, args);
      clis.push(cli);
      return cli;
    });
    for (const cli of clis) cli.kill();
    await Promise.allSettled(clis.map((cli) => cli.exited));
  },
  start: async ({ broker, cli }, use) => {
    await use(async (name, args = [], url = broker.url) => {
      const started = cli(name, ["--user", name, "--url", url, ...args]);
      await started.waitFor("* connected", { timeoutMs: START_TIMEOUT_MS });
      return started;
    });
  },
});
