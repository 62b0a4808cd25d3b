/**
 * Summarises a V8 CPU profile (.cpuprofile from `node --cpu-prof`): self
 * time by function and by category (seqcast's own code, node:http2 and
 * streams, protobuf, GC, idle), so a benchmark can print where the broker's
 * time went.
 *
 *   node --import tsx bench/profile-summary.ts FILE.cpuprofile [top]
 */
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  /** Sampled ms, idle excluded. */
  busyMs: number;
  idleMs: number;
  byCategory: Array<{ category: string; ms: number; share: number }>;
  top: Array<{ fn: string; where: string; ms: number; share: number }>;
}

/** Which part of the stack a frame belongs to. */
export function categoryOf(url: string, fn: string): string {
  if (fn === "(idle)") return "idle";
  if (fn === "(garbage collector)") return "GC";
  if (fn === "(program)") return "V8/native (program)";
  if (url.includes("/src/")) return "seqcast";
  if (url.includes("@bufbuild/protobuf")) return "protobuf-es";
  if (url.includes("@connectrpc")) return "connect-node";
  if (url.includes("better-sqlite3")) return "better-sqlite3";
  if (url.includes("internal/http2") || url.includes("node:http2")) return "node:http2";
  if (url.includes("internal/streams") || url.includes("internal/stream_base")) return "node streams";
  if (url.includes("internal/timers") || url.includes("node:timers")) return "node timers";
  if (url.includes("internal/streams") || url.includes("node:stream")) return "node streams";
  if (url.startsWith("node:") || url === "") return "node core / native";
  if (url.includes("node_modules")) return "other dependencies";
  return "other";
}

export function summarize(profile: Profile, topN = 15): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + (deltas[i] ?? 0));
  const categories = new Map<string, number>();
  const functions = new Map<string, { fn: string; where: string; us: number }>();
  let idleUs = 0;
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    const fn = functionName || "(anonymous)";
    const category = categoryOf(url, fn);
    if (category === "idle") {
      idleUs += us;
      continue;
    }
    busyUs += us;
    categories.set(category, (categories.get(category) ?? 0) + us);
    // tsx hands V8 each TypeScript module transpiled onto one line: a line number there says nothing.
    const where = url ? `${url.replace(/^.*\/(node_modules\/|src\/|bench\/)/, "$1")}${url.endsWith(".ts") ? "" : `:${lineNumber + 1}`}` : "";
    const key = `${fn}@${where}`;
    const entry = functions.get(key) ?? { fn, where, us: 0 };
    entry.us += us;
    functions.set(key, entry);
  }
  const share = (us: number) => (busyUs > 0 ? us / busyUs : 0);
  return {
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    byCategory: [...categories].sort((a, b) => b[1] - a[1]).map(([category, us]) => ({ category, ms: us / 1000, share: share(us) })),
    top: [...functions.values()].sort((a, b) => b.us - a.us).slice(0, topN).map((f) => ({ fn: f.fn, where: f.where, ms: f.us / 1000, share: share(f.us) })),
  };
}

export function formatSummary(summary: ProfileSummary): string {
  const lines = [`busy ${summary.busyMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms`, "", "| category | ms | share of busy |", "|---|--:|--:|"];
  for (const c of summary.byCategory) lines.push(`| ${c.category} | ${c.ms.toFixed(0)} | ${(c.share * 100).toFixed(1)}% |`);
  lines.push("", "| function (self time) | where | ms | share |", "|---|---|--:|--:|");
  for (const f of summary.top) lines.push(`| ${f.fn} | ${f.where} | ${f.ms.toFixed(0)} | ${(f.share * 100).toFixed(1)}% |`);
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    console.error("usage: profile-summary.ts FILE.cpuprofile [top]");
    process.exit(2);
  }
  console.log(formatSummary(summarize(JSON.parse(readFileSync(file, "utf8")) as Profile, Number(top ?? 25))));
}
