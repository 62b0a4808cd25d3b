// Checks the cost model of CEL filters (src/broker/filter-cost.ts) against
// the clock: for a corpus of costly filters, the estimate (units meant as
// ~1 µs) beside the median and worst measured time of one evaluation over
// adversarial messages of the largest size. Accepted filters must not take
// much longer than their estimate; refused ones show what the limit saves.
// Run: node --import tsx bench/filter-cost.ts [runs]
import { parse } from "@bufbuild/cel";
import { defaultBrokerConfig as d } from "../src/broker/config.js";
import { estimateFilter, FilterLimitError, type FilterLimits } from "../src/broker/filter-cost.js";
import { FilterCompiler } from "../src/broker/filter.js";
import type { StoredMessage } from "../src/engine/engine.js";

const runs = Number(process.argv[2] ?? 15);
const limits: FilterLimits = {
  maxBytes: d.filterMaxBytes,
  maxDepth: d.filterMaxDepth,
  maxNesting: d.filterMaxNesting,
  maxCost: d.filterMaxCost,
  maxRegexBytes: d.filterMaxRegexBytes,
  maxMessageBytes: d.maxMessageBytes,
};
// Compiles everything (no cost limit) so refused filters can be timed too.
const unlimited = new FilterCompiler({ ...limits, maxCost: Number.MAX_VALUE, maxNesting: 10 }, Infinity);
const M = d.maxMessageBytes;
const contents = [
  "ab".repeat(M / 2),
  "é".repeat(M / 2),
  `2024-01-01T00:00:00${"1".repeat(M - 30)}`,
  `${"9".repeat(M - 1)}s`,
];
const message = (content: string): StoredMessage => ({
  id: "1",
  room: "r",
  epoch: "e",
  sequence: 1n,
  sender: "s",
  content,
  payload: new Uint8Array(),
  attributes: { a: content.slice(0, 1000), n: "12" },
  timeMs: 0,
  clientMessageId: "",
});
const TEN = "[0,1,2,3,4,5,6,7,8,9]";
const list = (n: number) => `[${Array.from({ length: n }, (_, i) => i).join(",")}]`;
const corpus = [
  `attributes.kind == "goal"`,
  `int(attributes.n) % 10 == 0`,
  `timestamp(content) > timestamp(0)`,
  `duration(content) > duration("1s")`,
  `string(bytes(content)) == ""`,
  `bytes(content) + bytes(content) == b""`,
  Array.from({ length: 9 }, () => "size(content) > 3").join(" && "),
  `[${Array(20).fill("content").join(",")}].exists(x, x.contains("zz"))`,
  `${TEN}.all(a, ${TEN}.all(b, a + b >= 0))`,
  `${list(30)}.all(a, ${list(30)}.all(b, a != b || a == b))`,
  `${list(50)}.all(a, ${list(50)}.all(b, a != b || a == b))`,
  `${TEN}.all(a, ${TEN}.all(b, content.startsWith("zz")))`,
  `${TEN}.map(a, content).exists(x, x.endsWith("q"))`,
  `{content: 1}[content] == 1`,
  `content + content + content + content == content`,
  `content in [${Array.from({ length: 60 }, (_, i) => `"${i}"`).join(",")}]`,
  `content.matches("[a-z]+[0-9]")`,
  `${TEN}.exists(a, content.matches("[a-z]+[0-9]"))`,
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log("estimate  median µs  worst µs  filter");
for (const text of corpus) {
  let estimate: string;
  try {
    estimate = String(Math.ceil(estimateFilter(parse(text).expr, limits)));
  } catch (error) {
    if (!(error instanceof FilterLimitError)) throw error;
    estimate = `refused (${error.limit})`;
  }
  const filter = unlimited.compile(text, "filter");
  const times: number[] = [];
  for (const content of contents) {
    const m = message(content);
    filter(m);
    for (let i = 0; i < runs; i++) {
      const start = performance.now();
      filter(m);
      times.push((performance.now() - start) * 1000);
    }
  }
  // The median of the worst content is what a hostile publisher gets.
  const perContent = contents.map((_, i) => median(times.slice(i * runs, (i + 1) * runs)));
  console.log(`${estimate.padStart(8)}  ${Math.max(...perContent).toFixed(0).padStart(9)}  ${Math.max(...times).toFixed(0).padStart(8)}  ${text.slice(0, 70)}`);
}
