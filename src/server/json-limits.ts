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

/**
 * Most objects and arrays a JSON request may hold. The largest request of
 * the API (a PublishBatch of 1,000 messages with attributes) holds about
 * 2,000; 4 MiB of `[{},{},…]` would otherwise make JSON.parse build 1.4
 * million objects (~80 MiB) for connect-node to ignore.
 */
export const MAX_JSON_CONTAINERS = 20_000;

const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * What is wrong with the shape of a JSON text: nested deeper than
 * `maxDepth`, or more than `maxContainers` objects and arrays (counting
 * `{` and `[` outside strings, in one pass over the bytes, stopping at the
 * first excess); undefined when neither. Malformed JSON is left to
 * JSON.parse to refuse.
 */
export function jsonShapeExceeds(bytes: Uint8Array, maxDepth: number, maxContainers = Infinity): string | undefined {
  let depth = 0;
  let containers = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      if (++depth > maxDepth) return `nested deeper than ${maxDepth} levels`;
      if (++containers > maxContainers) return `made of more than ${maxContainers} objects and arrays`;
    } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) depth--;
  }
  return undefined;
}

/**
 * connect-node's JSON options with a text decoder that refuses a request
 * nested deeper than `maxDepth`, or holding more than `maxContainers`
 * objects and arrays, with INVALID_ARGUMENT (INVALID_REQUEST) before
 * JSON.parse sees it. connect's JSON serialization decodes every
 * request message (Connect, gRPC-Web and gRPC with JSON, and Connect GET)
 * through this decoder, so one check covers every protocol.
 */
export function jsonShapeLimit(maxDepth = MAX_JSON_DEPTH, maxContainers = MAX_JSON_CONTAINERS): { ignoreUnknownFields: boolean } {
  const utf8 = new TextDecoder();
  const textDecoder = {
    decode(input?: Uint8Array): string {
      const wrong = input && jsonShapeExceeds(input, maxDepth, maxContainers);
      if (wrong)
        throw new ConnectError(
          `request JSON is ${wrong}`,
          Code.InvalidArgument,
          undefined,
          errorDetails("INVALID_REQUEST", { limit_depth: String(maxDepth), limit_containers: String(maxContainers) }),
        );
      return utf8.decode(input);
    },
  };
  // textDecoder is read by connect's createJsonSerialization, though its option type does not list it.
  return { ignoreUnknownFields: true, textDecoder } as { ignoreUnknownFields: boolean };
}
