import { Code, ConnectError } from "@connectrpc/connect";
import { errorDetails } from "./errors.js";

/**
 * Deepest nesting of objects and arrays a JSON request may have. The
 * deepest request of the API (a Subscribe with positions, attributes) is
 * about 4 levels deep; the limit only keeps a request of unknown fields
 * nested a million levels deep (which connect-node ignores after JSON.parse
 * built all of it: ~230 MiB for 4 MiB of brackets) from being parsed at all.
 */
export const MAX_JSON_DEPTH = 32;

const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The deepest nesting of `{` and `[` outside strings, stopping as soon as it
 * passes `limit` (one pass over the bytes, no allocation). Malformed JSON is
 * left to JSON.parse to refuse.
 */
export function jsonDepthExceeds(bytes: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      if (++depth > limit) return true;
    } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) depth--;
  }
  return false;
}

/**
 * connect-node's JSON options with a text decoder that refuses a request
 * nested deeper than `maxDepth` with INVALID_ARGUMENT (INVALID_REQUEST)
 * before JSON.parse sees it. connect's JSON serialization decodes every
 * request message (Connect, gRPC-Web and gRPC with JSON, and Connect GET)
 * through this decoder, so one check covers every protocol.
 */
export function jsonDepthLimit(maxDepth = MAX_JSON_DEPTH): { ignoreUnknownFields: boolean } {
  const utf8 = new TextDecoder();
  const textDecoder = {
    decode(input?: Uint8Array): string {
      if (input && jsonDepthExceeds(input, maxDepth))
        throw new ConnectError(
          `request JSON is nested deeper than ${maxDepth} levels`,
          Code.InvalidArgument,
          undefined,
          errorDetails("INVALID_REQUEST", { limit_depth: String(maxDepth) }),
        );
      return utf8.decode(input);
    },
  };
  // textDecoder is read by connect's createJsonSerialization, though its option type does not list it.
  return { ignoreUnknownFields: true, textDecoder } as { ignoreUnknownFields: boolean };
}
