/**
 * Room patterns, NATS-style: segments are separated by '.'; `*` matches
 * exactly one segment, `>` (only as the last segment) matches one or more.
 * `sports.*` matches `sports.football` but not `sports.football.uk`;
 * `sports.>` matches both; `>` matches every room.
 */

const SEGMENT_RE = /^[A-Za-z0-9_-]+$/;

export function isPattern(name: string): boolean {
  return name.split(".").some((s) => s === "*" || s === ">");
}

/** Null when valid, else what is wrong (for an INVALID_ARGUMENT message). */
export function patternError(pattern: string): string | null {
  if (pattern.length === 0) return "must not be empty";
  if (pattern.length > 128) return `${pattern.length} characters, at most 128 allowed`;
  const segments = pattern.split(".");
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === ">" && i !== segments.length - 1) return "'>' may only be the last segment";
    if (s !== "*" && s !== ">" && !SEGMENT_RE.test(s))
      return "use letters, digits, '_' and '-' in dot-separated segments, '*' for one segment, '>' for the rest";
  }
  return null;
}

export function matchesPattern(pattern: string, room: string): boolean {
  if (pattern === room) return true;
  const p = pattern.split(".");
  const r = room.split(".");
  for (let i = 0; i < p.length; i++) {
    const s = p[i]!;
    if (s === ">") return r.length > i;
    if (i >= r.length) return false;
    if (s !== "*" && s !== r[i]) return false;
  }
  return p.length === r.length;
}

/** True when any of the patterns matches the room. */
export const anyMatches = (patterns: readonly string[], room: string): boolean =>
  patterns.some((p) => matchesPattern(p, room));
