import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TEST_SECRET } from "./tokens.js";
import { waitUntil } from "./wait.js";

/** `seqcast serve` as a user starts it: its own process, from the package bin. */
export interface ServeProcess {
  child: ChildProcess;
  url: string;
  port: number;
  dataDir: string;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
}

/**
 * Starts `bin/seqcast.js serve` with TEST_SECRET, a fresh data directory
 * (unless --data-dir is among the arguments) and port 0 (unless --port is),
 * and resolves once it listens. `launcher` runs it through a command that
 * execs it (e.g. `prlimit --nofile=1024:1024`), so the pid stays the broker's.
 */
export async function spawnServe(args: string[] = [], env: NodeJS.ProcessEnv = {}, launcher: string[] = []): Promise<ServeProcess> {
  const dataDir = args.includes("--data-dir") ? args[args.indexOf("--data-dir") + 1]! : mkdtempSync(join(tmpdir(), "seqcast-serve-"));
  const extra = [...(args.includes("--port") ? [] : ["--port", "0"]), ...(args.includes("--data-dir") ? [] : ["--data-dir", dataDir])];
  const command = [...launcher, process.execPath, "bin/seqcast.js", "serve", ...extra, ...args];
  const child = spawn(command[0]!, command.slice(1), {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, SEQCAST_JWT_SECRET: TEST_SECRET, ...env },
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  await waitUntil(() => output.includes("seqcast listening") || child.exitCode !== null, () => `serve to listen: ${output}`, 30_000);
  const line = output.split("\n").find((l) => l.includes("seqcast listening"));
  if (!line) throw new Error(`serve did not start (exit ${child.exitCode}): ${output}`);
  const { url, port } = JSON.parse(line) as { url: string; port: number };
  return { child, url, port, dataDir, output: () => output };
}

/** Resolves with the exit code once the process has exited. */
export const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(child.exitCode) : child.once("exit", (code) => resolve(code))));
