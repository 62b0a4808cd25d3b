import type { parse } from "@bufbuild/cel";

/** The parsed expression (cel.expr.Expr). */
type Expr = ReturnType<typeof parse>["expr"];

/**
 * Static bounds of a CEL filter, checked before it ever runs (issue 10 §1:
 * a filter of under 1 KiB could pin the event loop for good).
 *
 * The walk over the parsed AST estimates the worst-case cost of one
 * evaluation, in the spirit of the CEL spec's cost model (cel-go's
 * checker/cost.go): every node costs about one unit, string and list
 * operations cost in proportion to the bytes they traverse, a comprehension
 * costs its range's size times its body, and the sizes come from what a
 * message may hold at most (`content` and every attribute up to
 * --max-message-bytes, as many attributes as that many bytes allow).
 * A unit is roughly a microsecond of one core of this interpreter
 * (@bufbuild/cel, measured on a shared 2-core machine), so --filter-max-cost
 * bounds the time of every evaluation. bench/filter-cost.ts sets the
 * estimates beside measured times; the factors below are kept above them.
 */

export interface FilterLimits {
  /** Bytes of one expression (--filter-max-bytes). */
  maxBytes: number;
  /** Depth of the syntax tree, and of brackets before parsing (--filter-max-depth). */
  maxDepth: number;
  /** Comprehensions (all, exists, exists_one, map, filter) inside each other (--filter-max-nesting). */
  maxNesting: number;
  /** Worst-case cost of one evaluation, in units (--filter-max-cost). */
  maxCost: number;
  /** Bytes of the regular expression of matches() (--filter-max-regex-bytes). */
  maxRegexBytes: number;
  /** Largest message: bounds `content`, attribute keys, values and their count. */
  maxMessageBytes: number;
}

/** A limit a filter exceeds: the setting that sets it (its flag, without dashes) and why. */
export class FilterLimitError extends Error {
  override name = "FilterLimitError";
  constructor(
    readonly limit: string,
    readonly max: number,
    message: string,
  ) {
    super(message);
  }
}

// Cost factors, units (≈ µs) per byte traversed; see the header.
/** ==, <, +, contains, startsWith, conversions (native string operations). */
const TRAVERSE_PER_BYTE = 0.002;
/** `+` of strings: the rope is flattened by whatever reads it next. */
const CONCAT_PER_BYTE = 0.01;
/** timestamp() and duration() of a string parse it with regular expressions. */
const PARSE_PER_BYTE = 0.03;
/** string() of bytes decodes (and validates) UTF-8. */
const DECODE_PER_BYTE = 0.02;
/** size(string) counts code points (filter.ts replaces the standard one, which spread the string into an array). */
const SIZE_PER_BYTE = 0.01;
/** matches(): RE2JS simulates the automaton: per byte of input, per byte of (expanded) pattern, at least 10. */
const REGEX_PER_BYTE = 0.04;
/** matches() compiles its pattern on every call. */
const REGEX_COMPILE_PER_BYTE = 1;
/** Bookkeeping of one comprehension iteration. */
const ITERATION = 4;
/** The estimate walks a comprehension's body twice at most; this caps the walk itself. */
const MAX_WALK = 20_000;

/** Upper bounds of a value: bytes of a string, elements of a list, entries of a map; 1 otherwise. */
interface Shape {
  size: number;
  /** Elements of a list, keys of a map (what a comprehension iterates). */
  elem?: Shape;
  /** Values of a map. */
  value?: Shape;
  /** A bytes value (string() of it is costly). */
  bytes?: boolean;
}

interface Estimate {
  cost: number;
  shape: Shape;
}

const SCALAR: Shape = { size: 1 };
const SIZE_OF_A_NUMBER_AS_TEXT = 32;

function merge(a: Shape | undefined, b: Shape | undefined): Shape | undefined {
  if (!a) return b;
  if (!b) return a;
  return { size: Math.max(a.size, b.size), elem: merge(a.elem, b.elem), value: merge(a.value, b.value), bytes: a.bytes || b.bytes };
}

/** Bytes (or elements) an operation over the whole value traverses. */
function total(s: Shape): number {
  if (!s.elem && !s.value) return s.size;
  return s.size * (Math.max(1, s.elem ? total(s.elem) : 1) + (s.value ? total(s.value) : 0));
}

const fmt = (n: number) => (Number.isFinite(n) && n < 1e9 ? String(Math.ceil(n)) : n.toExponential(1));

/**
 * Depth of brackets, outside string literals, before the text is parsed:
 * the parser recurses per bracket, so a deep one is refused before it runs.
 */
export function checkBrackets(expression: string, limits: FilterLimits): void {
  let depth = 0;
  for (let i = 0; i < expression.length; i++) {
    const c = expression[i]!;
    if (c === '"' || c === "'") {
      const triple = expression.startsWith(c.repeat(3), i);
      const close = triple ? c.repeat(3) : c;
      i += close.length;
      while (i < expression.length && !expression.startsWith(close, i)) i += expression[i] === "\\" ? 2 : 1;
      i += close.length - 1;
    } else if (c === "(" || c === "[" || c === "{") {
      if (++depth > limits.maxDepth)
        throw new FilterLimitError("filter-max-depth", limits.maxDepth, `brackets nest deeper than ${limits.maxDepth} (--filter-max-depth)`);
    } else if (c === ")" || c === "]" || c === "}") depth--;
  }
}

/**
 * The worst-case cost of one evaluation of `expr`, or a FilterLimitError
 * naming the first limit it exceeds (depth, nesting, regular expression,
 * cost).
 */
export function estimateFilter(expr: Expr, limits: FilterLimits): number {
  const M = limits.maxMessageBytes;
  const text: Shape = { size: M };
  const variables = new Map<string, Shape>([
    ["content", text],
    ["sender", { size: 64 }],
    ["room", { size: 128 }],
    // Keys are not empty: at most M attributes of one byte.
    ["attributes", { size: M, elem: text, value: text }],
  ]);
  let walked = 0;

  const walk = (e: Expr | undefined, depth: number, nesting: number, scope: Map<string, Shape>): Estimate => {
    if (!e) return { cost: 0, shape: SCALAR };
    if (depth > limits.maxDepth)
      throw new FilterLimitError("filter-max-depth", limits.maxDepth, `the expression nests deeper than ${limits.maxDepth} (--filter-max-depth)`);
    if (++walked > MAX_WALK)
      throw new FilterLimitError("filter-max-cost", limits.maxCost, `too complex to estimate (over ${MAX_WALK} steps; --filter-max-cost)`);
    const next = (c: Expr | undefined, s = scope) => walk(c, depth + 1, nesting, s);
    const kind = e.exprKind;
    switch (kind.case) {
      case "constExpr": {
        const c = kind.value.constantKind;
        if (c.case === "stringValue") return { cost: 0, shape: { size: Buffer.byteLength(c.value, "utf8") } };
        if (c.case === "bytesValue") return { cost: 0, shape: { size: c.value.length, bytes: true } };
        return { cost: 0, shape: SCALAR };
      }
      case "identExpr":
        return { cost: 1, shape: scope.get(kind.value.name) ?? text };
      case "selectExpr": {
        const operand = next(kind.value.operand);
        return { cost: operand.cost + 1, shape: kind.value.testOnly ? SCALAR : (operand.shape.value ?? text) };
      }
      case "listExpr": {
        const elements = kind.value.elements.map((x) => next(x));
        return {
          cost: 1 + elements.reduce((sum, x) => sum + x.cost, 0),
          shape: { size: elements.length, elem: elements.reduce<Shape | undefined>((m, x) => merge(m, x.shape), undefined) ?? SCALAR },
        };
      }
      case "structExpr": {
        let cost = 1;
        let keys: Shape | undefined;
        let values: Shape | undefined;
        for (const entry of kind.value.entries) {
          if (entry.keyKind.case === "mapKey") {
            const key = next(entry.keyKind.value);
            cost += key.cost;
            keys = merge(keys, key.shape);
          }
          const value = next(entry.value);
          cost += value.cost;
          values = merge(values, value.shape);
        }
        return { cost, shape: { size: kind.value.entries.length, elem: keys ?? SCALAR, value: values ?? SCALAR } };
      }
      case "callExpr":
        return call(kind.value.function, kind.value.target, kind.value.args, next);
      case "comprehensionExpr": {
        const c = kind.value;
        if (nesting + 1 > limits.maxNesting)
          throw new FilterLimitError(
            "filter-max-nesting",
            limits.maxNesting,
            `comprehensions (all, exists, exists_one, map, filter) nest deeper than ${limits.maxNesting} (--filter-max-nesting)`,
          );
        const range = next(c.iterRange);
        const init = next(c.accuInit);
        const iterations = range.shape.size;
        const inner = (accu: Shape) => new Map([...scope, [c.iterVar, range.shape.elem ?? text], [c.accuVar, accu]]);
        const body = (e: Expr | undefined, accu: Shape) => walk(e, depth + 1, nesting + 1, inner(accu));
        // The accumulator of map() and filter() grows by what one step adds, every iteration.
        let step = body(c.loopStep, init.shape);
        const growth = Math.max(0, step.shape.size - init.shape.size);
        const accu: Shape = { size: init.shape.size + iterations * growth, elem: merge(init.shape.elem, step.shape.elem) };
        if (growth > 0) step = body(c.loopStep, accu);
        const condition = body(c.loopCondition, accu);
        const result = next(c.result, new Map([...scope, [c.accuVar, accu]]));
        return { cost: range.cost + init.cost + iterations * (step.cost + condition.cost + ITERATION) + result.cost, shape: result.shape };
      }
      default:
        return { cost: 1, shape: SCALAR };
    }
  };

  const call = (fn: string, targetExpr: Expr | undefined, argExprs: Expr[], next: (e: Expr | undefined) => Estimate): Estimate => {
    const target = targetExpr ? next(targetExpr) : undefined;
    const args = argExprs.map((a) => next(a));
    const all = target ? [target, ...args] : args;
    const base = 1 + all.reduce((sum, x) => sum + x.cost, 0);
    const [a, b] = all.map((x) => x.shape);
    switch (fn) {
      case "_?_:_":
        return { cost: 1 + args[0]!.cost + Math.max(args[1]!.cost, args[2]!.cost), shape: merge(args[1]!.shape, args[2]!.shape)! };
      case "_==_":
      case "_!=_":
      case "_<_":
      case "_<=_":
      case "_>_":
      case "_>=_":
        return { cost: base + TRAVERSE_PER_BYTE * Math.max(total(a!), total(b!)), shape: SCALAR };
      case "_+_":
        return {
          cost: base + CONCAT_PER_BYTE * (total(a!) + total(b!)),
          shape: { size: a!.size + b!.size, elem: merge(a!.elem, b!.elem), value: merge(a!.value, b!.value), bytes: a!.bytes || b!.bytes },
        };
      case "_[_]":
        // The key is hashed (or compared).
        return { cost: base + TRAVERSE_PER_BYTE * total(b!), shape: a!.value ?? a!.elem ?? text };
      case "@in":
        // A map is a hash lookup; a list is compared element by element.
        return { cost: b!.value ? base : base + b!.size * (1 + TRAVERSE_PER_BYTE * total(a!)), shape: SCALAR };
      case "size":
        return { cost: a!.elem || a!.value ? base : base + SIZE_PER_BYTE * a!.size, shape: SCALAR };
      case "contains":
      case "startsWith":
      case "endsWith":
        return { cost: base + TRAVERSE_PER_BYTE * total(a!), shape: SCALAR };
      case "matches": {
        const pattern = target ? argExprs[0] : argExprs[1];
        const constant = pattern?.exprKind.case === "constExpr" ? pattern.exprKind.value.constantKind : undefined;
        if (constant?.case !== "stringValue")
          throw new FilterLimitError("filter-max-regex-bytes", limits.maxRegexBytes, "matches() takes its regular expression as a string literal, so its size is known (--filter-max-regex-bytes)");
        const source = constant.value;
        const bytes = Buffer.byteLength(source, "utf8");
        if (bytes > limits.maxRegexBytes)
          throw new FilterLimitError(
            "filter-max-regex-bytes",
            limits.maxRegexBytes,
            `the regular expression of matches() has ${bytes} bytes, at most ${limits.maxRegexBytes} allowed (--filter-max-regex-bytes)`,
          );
        return { cost: base + REGEX_COMPILE_PER_BYTE * bytes + REGEX_PER_BYTE * total(a!) * regexWeight(source), shape: SCALAR };
      }
      case "int":
      case "uint":
        // filter.ts refuses a text longer than any integer before parsing it.
        return { cost: base, shape: SCALAR };
      case "double":
      case "bool":
        return { cost: base + TRAVERSE_PER_BYTE * (a ? total(a) : 0), shape: SCALAR };
      case "timestamp":
      case "duration":
        return { cost: base + PARSE_PER_BYTE * (a ? total(a) : 0), shape: SCALAR };
      case "string":
      case "bytes": {
        const bytes = a ? total(a) : 0;
        const perByte = fn === "string" && a?.bytes ? DECODE_PER_BYTE : TRAVERSE_PER_BYTE;
        return { cost: base + perByte * bytes, shape: { size: Math.max(bytes, SIZE_OF_A_NUMBER_AS_TEXT), bytes: fn === "bytes" } };
      }
      case "dyn":
        return { cost: base, shape: a ?? SCALAR };
      default:
        // Logic, arithmetic, negation, type(), the timestamp accessors: constant time.
        return { cost: base, shape: SCALAR };
    }
  };

  const { cost } = walk(expr, 1, 0, variables);
  if (!(cost <= limits.maxCost))
    throw new FilterLimitError(
      "filter-max-cost",
      limits.maxCost,
      `worst-case cost ${fmt(cost)} exceeds ${limits.maxCost} (--filter-max-cost): ` +
        `every message is evaluated, and a message may hold ${M} bytes of content or attributes`,
    );
  return cost;
}

/**
 * How much larger than its text a pattern's automaton may get: a counted
 * repetition `{n}` / `{n,m}` copies what it repeats up to m times.
 */
function regexWeight(source: string): number {
  // RE2JS takes ~0.4 µs a byte even for a short pattern without a literal prefix ([a-z]+[0-9]: 26 ms over 64 KiB).
  let weight = Math.max(10, source.length);
  for (const [, low, high] of source.matchAll(/\{(\d+)(?:,(\d*))?\}/g)) weight *= Math.max(1, Number(high || low));
  return weight;
}
