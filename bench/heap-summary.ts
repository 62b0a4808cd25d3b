/**
 * Summarizes a sampling heap profile (bench/broker-child.ts with
 * BENCH_HEAP_SAMPLE=FILE): bytes allocated per function (self), largest
 * first, and per function with its callers' chain (top frames).
 *
 *   node --import tsx bench/heap-summary.ts FILE [N]
 */
import { readFileSync } from "node:fs";

interface Node {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: Node[];
}

const [file, count] = [process.argv[2], Number(process.argv[3] ?? 30)];
if (!file) throw new Error("usage: heap-summary.ts FILE [N]");
const profile = JSON.parse(readFileSync(file, "utf8")) as { head: Node };
const where = (n: Node) => `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.replace(/^.*\/(src|bench|node_modules)\//, "$1/")}:${n.callFrame.lineNumber + 1}`;
const self = new Map<string, number>();
const chains = new Map<string, number>();
let total = 0;
const visit = (n: Node, stack: string[]) => {
  const here = where(n);
  const path = [...stack, here];
  if (n.selfSize > 0) {
    total += n.selfSize;
    self.set(here, (self.get(here) ?? 0) + n.selfSize);
    const chain = path.slice(-4).join(" < ");
    chains.set(chain, (chains.get(chain) ?? 0) + n.selfSize);
  }
  for (const child of n.children) visit(child, path);
};
visit(profile.head, []);
const mb = (b: number) => (b / 1048576).toFixed(1);
console.log(`sampled allocations: ${mb(total)} MiB\n`);
console.log("| function (self) | MiB | share |\n|---|--:|--:|");
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, count)) console.log(`| ${k} | ${mb(v)} | ${((v / total) * 100).toFixed(1)}% |`);
console.log("\n| chain (innermost last) | MiB |\n|---|--:|");
for (const [k, v] of [...chains].sort((a, b) => b[1] - a[1]).slice(0, count)) console.log(`| ${k} | ${mb(v)} |`);
