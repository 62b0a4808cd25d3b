import { pino, type DestinationStream, type Logger as PinoLogger } from "pino";

/**
 * The broker's structured log: pino, one JSON object per line (level, time,
 * pid, hostname, the event's fields, msg last), or a short human-readable
 * line per event when a person is watching (stdout is a terminal). Every
 * layer takes a Logger; nothing logs with console.* except the CLI's usage
 * messages.
 */
export type Logger = PinoLogger;

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const LOG_FORMATS = ["auto", "json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LoggerOptions {
  level: LogLevel;
  /** auto: pretty when `stream` is a terminal, JSON otherwise. */
  format?: LogFormat;
  /** Default: stdout. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

export function createLogger(options: LoggerOptions): Logger {
  const stream = options.stream ?? process.stdout;
  const format = options.format ?? "auto";
  const pretty = format === "pretty" || (format === "auto" && stream.isTTY === true);
  // Written synchronously, line by line: a log line is never lost when the
  // process exits right after it (a failed start, the last "stopped").
  const destination: DestinationStream = pretty
    ? { write: (line: string) => void stream.write(`${prettyLine(line, stream.isTTY === true)}\n`) }
    : stream === process.stdout
      ? pino.destination({ dest: 1, sync: true })
      : stream === process.stderr
        ? pino.destination({ dest: 2, sync: true })
        : { write: (line: string) => void stream.write(line) };
  return pino({ level: options.level }, destination);
}

/** Logs nothing (the default of a broker or server started without one). */
export const silentLogger: Logger = pino({ level: "silent" });

/**
 * The process's logger, for code that has no server at hand (the last-resort
 * report of a bug in src/server/errors.ts). Until `seqcast serve` sets one it
 * reports errors on stderr only, as a library should.
 */
let root: Logger | undefined;
export function rootLogger(): Logger {
  return (root ??= createLogger({ level: "error", format: "json", stream: process.stderr }));
}
export function setRootLogger(logger: Logger): void {
  root = logger;
}

const LEVEL_NAMES: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };
/** ANSI colours of the level names in a terminal. */
const LEVEL_COLORS: Record<number, string> = { 10: "90", 20: "36", 30: "32", 40: "33", 50: "31", 60: "35" };
/** Fields every line has, left out of the pretty form (time is shown first, the rest is noise on one machine). */
const HIDDEN = new Set(["level", "time", "msg", "pid", "hostname"]);

/**
 * One JSON log line as a person reads it:
 * `12:04:05.123 WARN  slow consumer cut off user=ann queuedEvents=1000`.
 * Strings without spaces or quotes stand bare, everything else as JSON; an
 * error's stack (only ever logged for bugs) follows on its own lines.
 */
export function prettyLine(json: string, color = false): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trimEnd();
  }
  const level = typeof record.level === "number" ? record.level : 30;
  const time = typeof record.time === "number" ? new Date(record.time) : new Date();
  const clock = `${pad(time.getHours())}:${pad(time.getMinutes())}:${pad(time.getSeconds())}.${String(time.getMilliseconds()).padStart(3, "0")}`;
  const name = (LEVEL_NAMES[level] ?? String(level)).padEnd(5);
  const shown = color ? `\x1b[${LEVEL_COLORS[level] ?? "0"}m${name}\x1b[0m` : name;
  const parts = [clock, shown, String(record.msg ?? "")];
  let stack = "";
  for (const [key, value] of Object.entries(record)) {
    if (HIDDEN.has(key)) continue;
    if (key === "err" && value && typeof value === "object" && "stack" in value) {
      stack = `\n${String((value as { stack: unknown }).stack)}`;
      parts.push(`err=${JSON.stringify((value as { message?: unknown }).message ?? "")}`);
      continue;
    }
    parts.push(`${key}=${typeof value === "string" && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`);
  }
  return parts.join(" ") + stack;
}

const pad = (n: number) => String(n).padStart(2, "0");
