// Parsers of command-line and environment values. Each throws an Error whose
// message names the setting and shows a valid example.

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `500ms`, `30s`, `15m`, `24h`, `7d` or a bare number of seconds; `0` = off. */
export function parseDuration(text: string, what: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!match) throw new Error(`${what}: "${text}" is not a duration (use e.g. 500ms, 30s, 15m, 24h, 7d)`);
  return Math.round(Number(match[1]) * UNITS[match[2] ?? "s"]!);
}

/** The shortest exact spelling of a duration (`24h`, `2m`, `500ms`; `0` for zero). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0";
  if (ms % UNITS.d! === 0 && ms >= 2 * UNITS.d!) return `${ms / UNITS.d!}d`;
  for (const unit of ["h", "m", "s"] as const) if (ms % UNITS[unit]! === 0) return `${ms / UNITS[unit]!}${unit}`;
  return `${ms}ms`;
}

/** Parses `65536`, `64KiB`, `1MiB` (also kb/mb as powers of 1024). */
export function parseBytes(text: string, what: string): number {
  const match = /^\s*(\d+)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$/i.exec(text);
  if (!match) throw new Error(`${what}: "${text}" is not a size (use e.g. 65536, 64KiB, 1MiB)`);
  const unit = (match[2] ?? "b").toLowerCase();
  const factor = unit.startsWith("k") ? 1024 : unit.startsWith("m") ? 1024 ** 2 : unit.startsWith("g") ? 1024 ** 3 : 1;
  return Number(match[1]) * factor;
}

/** `64KiB`, `1MiB` or a plain byte count. */
export function formatBytes(bytes: number): string {
  if (bytes > 0 && bytes % 1024 ** 3 === 0) return `${bytes / 1024 ** 3}GiB`;
  if (bytes > 0 && bytes % 1024 ** 2 === 0) return `${bytes / 1024 ** 2}MiB`;
  if (bytes > 0 && bytes % 1024 === 0) return `${bytes / 1024}KiB`;
  return String(bytes);
}

export function parsePositiveInt(text: string, what: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isSafeInteger(value) || value < 1) throw new Error(`${what}: "${text}" is not a positive integer`);
  return value;
}

export function parseNonNegativeInt(text: string, what: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isSafeInteger(value) || value < 0) throw new Error(`${what}: "${text}" is not a whole number >= 0`);
  return value;
}

export function parsePort(text: string, what: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isInteger(value) || value < 0 || value > 65535) throw new Error(`${what}: "${text}" is not a port number (0-65535)`);
  return value;
}

/** One of the allowed words. */
export function parseChoice<T extends string>(choices: readonly T[]): (text: string, what: string) => T {
  return (text, what) => {
    if (!(choices as readonly string[]).includes(text)) throw new Error(`${what}: "${text}" is not one of ${choices.join(", ")}`);
    return text as T;
  };
}

/** A switch: on/true/yes/1 or off/false/no/0 (a flag without a value is "on"). */
export function parseSwitch(text: string, what: string): boolean {
  const word = text.trim().toLowerCase();
  if (["on", "true", "yes", "1"].includes(word)) return true;
  if (["off", "false", "no", "0"].includes(word)) return false;
  throw new Error(`${what}: "${text}" is not on or off (1/0, true/false and yes/no work too)`);
}
