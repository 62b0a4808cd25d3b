/**
 * Where the extra CPU of publishing to many rooms goes: splits a broker's
 * CPU profile between the rooms scenario's one-room and many-room phases
 * and lists, per function, the self time per publish of each side and the
 * difference, largest first.
 *
 *   BENCH_SCENARIOS=rooms BENCH_SYSTEMS=seqcast BENCH_CPU_PROF=/tmp/prof \
 *     BENCH_ROOMS_SPANS=/tmp/spans.txt npm run bench
 *   node --import tsx bench/phase-profile.ts /tmp/prof/<main thread>.cpuprofile /tmp/spans.txt [stage] [rows]
 *
 * stage: filling, full (default) or scattered; rows: how many (default 20);
 * BENCH_ROOMS_MESSAGES as for the run (publishes per phase).
 * The broker's main thread is the profile whose name ends in .0.001 (others
 * are its workers). A profile and the spans count in microseconds of the
 * same monotonic clock, so a sample falls in the phase that was running.
 * The function-level split moves with inlining (a function inlined on one
 * side and not the other moves its time to its caller): read a pair of
 * rows together when one is +x and its caller -x.
 */
import { readFileSync } from "node:fs";

interface Profile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const [profileFile, spansFile, stage = "full", rowsArg = "20"] = process.argv.slice(2);
if (!profileFile || !spansFile) {
  console.error("usage: node --import tsx bench/phase-profile.ts <broker .cpuprofile> <spans file> [stage] [rows]");
  process.exit(2);
}
const profile = JSON.parse(readFileSync(profileFile, "utf8")) as Profile;
// The broker's pid, from the name --cpu-prof gives (CPU.<date>.<time>.<pid>.<thread>.<n>.cpuprofile): its phases only.
const pid = /CPU\.\d+\.\d+\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(profileFile)?.[1];
const spans = readFileSync(spansFile, "utf8")
  .trim()
  .split("\n")
  .map((line) => line.split(" "))
  .filter((fields) => fields[3] === stage && (pid === undefined || fields[5] === pid))
  .map(([start, end, side]) => ({ start: Number(start), end: Number(end), side: side as "one" | "many" }));
const messagesPerPhase = Number(process.env.BENCH_ROOMS_MESSAGES ?? 40_000);
const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
const self = { one: new Map<string, number>(), many: new Map<string, number>() };
const publishes = { one: 0, many: 0 };
for (const span of spans) publishes[span.side] += messagesPerPhase;
let t = profile.startTime;
let at = 0;
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i]!;
  while (at < spans.length && spans[at]!.end < t) at++;
  if (at >= spans.length) break;
  const span = spans[at]!;
  if (span.start > t) continue;
  const frame = frames.get(profile.samples[i]!)!;
  const key = `${frame.functionName || "(anonymous)"} ${frame.url.split("/").at(-1)}${frame.lineNumber > 0 ? `:${frame.lineNumber + 1}` : ""}`;
  const side = self[span.side];
  side.set(key, (side.get(key) ?? 0) + profile.timeDeltas[i]!);
}
if (publishes.one === 0 || publishes.many === 0) {
  console.error(`no ${stage} phases of both sides within the profile (${spans.length} spans)`);
  process.exit(1);
}
const perPublish = (side: "one" | "many", key: string) => (self[side].get(key) ?? 0) / publishes[side];
const total = (side: "one" | "many") => [...self[side].values()].reduce((a, b) => a + b, 0) / publishes[side];
const rows = [...new Set([...self.one.keys(), ...self.many.keys()])]
  .map((key) => ({ key, one: perPublish("one", key), many: perPublish("many", key) }))
  .sort((a, b) => b.many - b.one - (a.many - a.one));
const fmt = (us: number) => us.toFixed(3).padStart(7);
console.log(`${stage} stage, ${spans.length} phases: µs of samples per publish, one room ${total("one").toFixed(3)}, many rooms ${total("many").toFixed(3)}`);
console.log(`${"one".padStart(7)} ${"many".padStart(7)} ${"diff".padStart(7)}  function`);
for (const row of rows.slice(0, Number(rowsArg))) console.log(`${fmt(row.one)} ${fmt(row.many)} ${fmt(row.many - row.one)}  ${row.key}`);
