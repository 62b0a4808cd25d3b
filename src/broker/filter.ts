import { celEnv, celFunc, celMethod, CelScalar, celUint, isCelError, parse, plan } from "@bufbuild/cel";
import type { StoredMessage } from "../engine/engine.js";
import { defaultBrokerConfig, type BrokerConfig } from "./config.js";
import { BrokerError, invalidArgument } from "./errors.js";
import { checkBrackets, estimateFilter, FilterLimitError, type FilterLimits } from "./filter-cost.js";

export { FilterLimitError, type FilterLimits } from "./filter-cost.js";

/**
 * Content-based routing: a CEL expression over a message, compiled once per
 * subscription and evaluated in the broker before delivery.
 *
 * Variables: `attributes` (map of strings), `content`, `sender`, `room`.
 * An evaluation error (a missing attribute, a failed conversion) means "not
 * delivered"; the caller counts it. Nothing here throws at delivery time.
 */
export type MessageFilter = (message: StoredMessage) => "match" | "no_match" | "error";

const VARIABLES = ["attributes", "content", "sender", "room"];

// Two standard functions whose cost in @bufbuild/cel grows faster than the
// text they read, replaced by linear ones so filter-cost.ts can bound them:
// int()/uint() of a string parse it with BigInt (32 ms for 64 KiB of digits,
// more than any int64 needs), size() of a string spreads it into an array of
// code points (8 ms for 64 KiB).
const { INT, UINT, STRING } = CelScalar;
/** Longest text of an int64 or uint64 ("-9223372036854775808"), with room for spaces. */
const MAX_INTEGER_TEXT = 32;
const MAX_UINT = 2n ** 64n - 1n;
const parseInteger = (text: string, kind: string): bigint => {
  if (text.length > MAX_INTEGER_TEXT) throw new Error(`${kind} overflow during type conversion`);
  return BigInt(text);
};
const toInt = (text: string): bigint => {
  const value = parseInteger(text, "int");
  if (value < -(2n ** 63n) || value > 2n ** 63n - 1n) throw new Error("int overflow during type conversion");
  return value;
};
const toUint = (text: string) => {
  const value = parseInteger(text, "uint");
  if (value < 0n || value > MAX_UINT) throw new Error("uint overflow during type conversion");
  return celUint(value);
};
/** Code points, without an array of them. */
const codePoints = (text: string): bigint => {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return BigInt(n);
};
const env = celEnv({
  funcs: [
    celFunc("int", [STRING], INT, toInt),
    celFunc("uint", [STRING], UINT, toUint),
    celFunc("size", [STRING], INT, codePoints),
    celMethod("size", STRING, [], INT, function (this: string) {
      return codePoints(this);
    }),
  ],
});
/** Compiled filters (and refusals) kept by expression text: 3,500 rooms with one filter compile it once. */
const CACHE_ENTRIES = 256;

/** Why a text is refused, without the field it came in (the same text may come in another one). */
type Refusal = (field: string) => BrokerError;
type Compiled = { filter: MessageFilter } | { refuse: Refusal };

const refusal =
  (problem: string, metadata: Record<string, string> = {}): Refusal =>
  (field) =>
    invalidArgument(`${field}: ${problem}`, "INVALID_FILTER", { field, ...metadata });

const overLimit = (error: FilterLimitError): Refusal => refusal(error.message, { limit: error.limit, max: String(error.max) });

/**
 * Compiles filters within the limits (filter-cost.ts), for one broker.
 * Everything is checked before the expression runs: its size, the depth of
 * its brackets (before parsing), the depth of its tree, the nesting of its
 * comprehensions, its regular expressions and its worst-case cost.
 */
export class FilterCompiler {
  private readonly cache = new Map<string, Compiled>();

  constructor(
    readonly limits: FilterLimits,
    /** Bytes of distinct filter texts one request may ask to compile (--filter-max-request-bytes). */
    readonly maxRequestBytes: number,
  ) {}

  /** The compiler of a broker with this configuration. */
  static of(config: BrokerConfig): FilterCompiler {
    return new FilterCompiler(
      {
        maxBytes: config.filterMaxBytes,
        maxDepth: config.filterMaxDepth,
        maxNesting: config.filterMaxNesting,
        maxCost: config.filterMaxCost,
        maxRegexBytes: config.filterMaxRegexBytes,
        maxMessageBytes: config.maxMessageBytes,
      },
      config.filterMaxRequestBytes,
    );
  }

  /** `expression` compiled, or INVALID_ARGUMENT (INVALID_FILTER) naming `field` and what is wrong. */
  compile(expression: string, field: string): MessageFilter {
    let compiled = this.cache.get(expression);
    if (compiled) this.cache.delete(expression);
    else compiled = this.build(expression);
    this.cache.set(expression, compiled);
    if (this.cache.size > CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    if ("refuse" in compiled) throw compiled.refuse(field);
    return compiled.filter;
  }

  /**
   * Refuses a request whose distinct filter texts add up to more than
   * maxRequestBytes, before any of them is compiled (identical ones count once).
   */
  checkRequest(expressions: Iterable<string>, field: string): void {
    let bytes = 0;
    for (const text of new Set(expressions)) bytes += Buffer.byteLength(text, "utf8");
    if (bytes > this.maxRequestBytes)
      throw invalidArgument(
        `${field}: the filters of one request add up to ${bytes} bytes, at most ${this.maxRequestBytes} allowed (--filter-max-request-bytes); ` +
          `use fewer distinct filters`,
        "INVALID_FILTER",
        { field, limit: "filter-max-request-bytes", max: String(this.maxRequestBytes) },
      );
  }

  private build(expression: string): Compiled {
    const bytes = Buffer.byteLength(expression, "utf8");
    if (bytes > this.limits.maxBytes)
      return {
        refuse: refusal(`${bytes} bytes, at most ${this.limits.maxBytes} allowed (--filter-max-bytes)`, {
          limit: "filter-max-bytes",
          max: String(this.limits.maxBytes),
        }),
      };
    let evaluate: ReturnType<typeof plan>;
    try {
      checkBrackets(expression, this.limits);
      const parsed = parse(expression);
      estimateFilter(parsed.expr, this.limits);
      evaluate = plan(env, parsed);
    } catch (error) {
      if (error instanceof FilterLimitError) return { refuse: overLimit(error) };
      // The parser's message carries the position: "<input>:1:17: found = but expecting …".
      return { refuse: refusal(String((error as Error).message).replace(/^<input>:/, "at ")) };
    }
    // A reference to anything but our variables can never succeed: reject it now
    // rather than silently deliver nothing. (Cheap: the cost is bounded above.)
    const probe = evaluate(bindings({ attributes: {}, content: "", sender: "", room: "" }));
    if (isCelError(probe) && /unresolved attribute|undeclared reference/i.test(probe.message))
      return { refuse: refusal(`unknown variable; a filter may use ${VARIABLES.join(", ")}`) };
    const filter: MessageFilter = (message) => {
      let result;
      try {
        result = evaluate(bindings(message));
      } catch {
        return "error";
      }
      if (isCelError(result)) return "error";
      return result === true ? "match" : "no_match";
    };
    return { filter };
  }
}

function bindings(m: Pick<StoredMessage, "attributes" | "content" | "sender" | "room">) {
  return {
    attributes: new Map(Object.entries(m.attributes)),
    content: m.content,
    sender: m.sender,
    room: m.room,
  };
}

let defaults: FilterCompiler | undefined;

/** `expression` compiled within the default limits (tests, tools); a broker compiles with its own configuration's. */
export function compileFilter(expression: string, field: string): MessageFilter {
  defaults ??= FilterCompiler.of(defaultBrokerConfig);
  return defaults.compile(expression, field);
}
