import { celEnv, isCelError, parse, plan } from "@bufbuild/cel";
import type { StoredMessage } from "../engine/engine.js";
import { invalidArgument } from "./errors.js";

/**
 * Content-based routing: a CEL expression over a message, compiled once per
 * subscription and evaluated in the broker before delivery.
 *
 * Variables: `attributes` (map of strings), `content`, `sender`, `room`.
 * An evaluation error (a missing attribute, a failed conversion) means "not
 * delivered"; the caller counts it. Nothing here throws at delivery time.
 */
export type MessageFilter = (message: StoredMessage) => "match" | "no_match" | "error";

export const MAX_FILTER_BYTES = 1024;
const VARIABLES = ["attributes", "content", "sender", "room"];
const env = celEnv({});

export function compileFilter(expression: string, field: string): MessageFilter {
  if (Buffer.byteLength(expression, "utf8") > MAX_FILTER_BYTES)
    throw invalidArgument(`${field}: longer than ${MAX_FILTER_BYTES} bytes`, "INVALID_FILTER", { field });
  let evaluate: ReturnType<typeof plan>;
  try {
    evaluate = plan(env, parse(expression));
  } catch (error) {
    // The parser's message carries the position: "<input>:1:17: found = but expecting …".
    throw invalidArgument(`${field}: ${String((error as Error).message).replace(/^<input>:/, "at ")}`, "INVALID_FILTER", { field });
  }
  const bindings = (m: Pick<StoredMessage, "attributes" | "content" | "sender" | "room">) => ({
    attributes: new Map(Object.entries(m.attributes)),
    content: m.content,
    sender: m.sender,
    room: m.room,
  });
  // A reference to anything but our variables can never succeed: reject it now
  // rather than silently deliver nothing.
  const probe = evaluate(bindings({ attributes: {}, content: "", sender: "", room: "" }));
  if (isCelError(probe) && /unresolved attribute|undeclared reference/i.test(probe.message))
    throw invalidArgument(`${field}: unknown variable; a filter may use ${VARIABLES.join(", ")}`, "INVALID_FILTER", { field });
  return (message) => {
    let result;
    try {
      result = evaluate(bindings(message));
    } catch {
      return "error";
    }
    if (isCelError(result)) return "error";
    return result === true ? "match" : "no_match";
  };
}
