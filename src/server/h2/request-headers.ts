import type { IncomingHttpHeaders } from "node:http2";
import { HpackError, type HpackDecoder } from "./hpack.js";

export interface DecodedHeaders {
  /** Without Object.prototype, as Node's: a field named `__proto__` is just a field. */
  headers: IncomingHttpHeaders;
  /** Names and values in the order received, as Node's `rawHeaders`. */
  raw: string[];
}

/** Fields Node keeps one of (the first); others repeat as `, `-joined values, `cookie` with `; `, `set-cookie` as a list. */
const SINGLE = new Set([
  ":method",
  ":path",
  ":scheme",
  ":authority",
  ":status",
  ":protocol",
  "authorization",
  "content-length",
  "content-type",
  "host",
  "user-agent",
  "grpc-timeout",
  "grpc-encoding",
]);
const PSEUDO = new Set([":method", ":path", ":scheme", ":authority", ":protocol"]);
/**
 * A headers object without Object.prototype (a field named `__proto__` or
 * `constructor` is just a field), built by a constructor so that requests
 * with the same fields share V8's fast property layout, as Node's own are.
 */
const NullHeaders = function NullHeaders() {} as unknown as new () => Record<string, string | string[]>;
NullHeaders.prototype = Object.create(null);

/** True when `name` has an uppercase ASCII letter (malformed in HTTP/2). */
function hasUpper(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) return true;
  }
  return false;
}

/** Connection-specific fields, malformed in HTTP/2 (RFC 9113 §8.2.2). */
const CONNECTION_SPECIFIC = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

/**
 * Decodes one request header block. The whole block is always decoded, so
 * the connection's HPACK table stays in step with the client's even for a
 * request that is refused (`trailers`: a request's trailers, without
 * pseudo-headers); the result is the headers, "malformed" (RFC 9113
 * §8.1.1: uppercase names, pseudo-headers out of place or unknown,
 * connection-specific fields, a missing :method or :path), "too large"
 * (over `maxBytes`, counted as SETTINGS_MAX_HEADER_LIST_SIZE counts), or
 * "compression" (the block cannot be decoded: the connection must end).
 */
export function requestHeaders(
  hpack: HpackDecoder,
  block: Buffer,
  maxBytes: number,
  trailers = false,
): DecodedHeaders | "malformed" | "too large" | "compression" {
  const headers = new NullHeaders();
  const raw: string[] = [];
  let size = 0;
  let malformed = false;
  let regular = false;
  try {
    hpack.decode(block, (name, value) => {
      size += name.length + value.length + 32;
      if (size > maxBytes || malformed) return;
      if (name.length === 0 || hasUpper(name)) malformed = true;
      else if (name.charCodeAt(0) === 58 /* : */) {
        if (trailers || regular || !PSEUDO.has(name) || headers[name] !== undefined) malformed = true;
      } else {
        regular = true;
        if (CONNECTION_SPECIFIC.has(name) || (name === "te" && value !== "trailers")) malformed = true;
      }
      raw.push(name, value);
      const existing = headers[name];
      if (existing === undefined) headers[name] = name === "set-cookie" ? [value] : value;
      else if (name === "set-cookie") (existing as string[]).push(value);
      else if (!SINGLE.has(name)) headers[name] = `${existing as string}${name === "cookie" ? "; " : ", "}${value}`;
    });
  } catch (error) {
    if (error instanceof HpackError) return "compression";
    throw error;
  }
  if (size > maxBytes) return "too large";
  if (malformed) return "malformed";
  if (trailers) return { headers: headers as IncomingHttpHeaders, raw };
  const method = headers[":method"];
  if (method === undefined || (method !== "CONNECT" && (headers[":path"] === undefined || headers[":scheme"] === undefined))) return "malformed";
  return { headers: headers as IncomingHttpHeaders, raw };
}
