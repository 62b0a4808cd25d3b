/**
 * CPU profiles of the broker's paced phase: summarised with
 * bench/profile-summary.ts, stored as markdown with the summary's numbers
 * in a JSON comment (bench/profiles/paced-before-*.md), and compared
 * before/after in the report.
 */
import { readFileSync } from "node:fs";
import { formatSummary, summarize, type ProfileSummary } from "../profile-summary.js";
import { fmtInt, mdTable } from "./format.js";

export interface ProfileResult {
  /** Which broker: a commit and what drove it. */
  label: string;
  file?: string;
  /** Deliveries during the profiled phase, to normalise busy time. */
  deliveries: number;
  /**
   * The broker's CPU time during the profiled phase, from /proc. Sampled
   * "busy" time is wall time (a descheduled process still gets samples), so
   * on a loaded machine it overstates CPU; shares × this CPU time do not.
   */
  cpuSeconds?: number;
  /** The same paced phase without the profiler, in the same run: the broker's CPU ms per 1,000 deliveries. */
  unprofiledPer1000?: number;
  summary: ProfileSummary;
}

const TOP = 15;

export function summarizeProfileFile(file: string, deliveries: number, cpuSeconds: number | undefined, label: string): ProfileResult | undefined {
  try {
    const profile = JSON.parse(readFileSync(file, "utf8")) as Parameters<typeof summarize>[0];
    return { label, file, deliveries, cpuSeconds, summary: summarize(profile, TOP) };
  } catch {
    return undefined;
  }
}

/** Broker CPU ms per 1,000 deliveries spent in a share of the profile's busy time (sampled ms when no CPU time is known). */
export const cpuPer1000 = (p: ProfileResult, share = 1) =>
  ((p.cpuSeconds !== undefined ? p.cpuSeconds * 1000 : p.summary.busyMs) * share * 1000) / p.deliveries;

const JSON_START = "<!-- profile-summary-json";

/** A stored profile: readable summary plus its numbers for later comparison. */
export function profileMarkdown(p: ProfileResult, heading: string, about: string[]): string {
  return [
    `# ${heading}`,
    "",
    ...about,
    "",
    `${fmtInt(p.deliveries)} deliveries; broker CPU ${p.cpuSeconds?.toFixed(2) ?? "—"} s (/proc) = ${cpuPer1000(p).toFixed(1)} ms per 1,000 deliveries; ` +
      `the profile sampled ${p.summary.busyMs.toFixed(0)} ms busy and ${p.summary.idleMs.toFixed(0)} ms idle. ` +
      `The same paced phase without the profiler, just before: ${p.unprofiledPer1000?.toFixed(1) ?? "—"} CPU ms per 1,000 deliveries.`,
    "",
    formatSummary(p.summary),
    "",
    JSON_START,
    JSON.stringify({ label: p.label, deliveries: p.deliveries, cpuSeconds: p.cpuSeconds, unprofiledPer1000: p.unprofiledPer1000, summary: p.summary }),
    "-->",
    "",
  ].join("\n");
}

export function readProfileMarkdown(file: string): ProfileResult | undefined {
  try {
    const text = readFileSync(file, "utf8");
    const start = text.indexOf(JSON_START);
    if (start < 0) return undefined;
    const json = text.slice(start + JSON_START.length, text.indexOf("-->", start)).trim();
    return JSON.parse(json) as ProfileResult;
  } catch {
    return undefined;
  }
}

const pct = (share: number | undefined) => (share === undefined ? "—" : `${(share * 100).toFixed(1)}%`);

/** Before/after: categories side by side (CPU ms per 1,000 deliveries = share of busy samples × broker CPU time), then each one's top functions. */
export function compareProfiles(before: ProfileResult | undefined, after: ProfileResult | undefined): string[] {
  const lines: string[] = [];
  const categories = [...new Set([...(before?.summary.byCategory ?? []), ...(after?.summary.byCategory ?? [])].map((c) => c.category))];
  const find = (p: ProfileResult | undefined, category: string) => p?.summary.byCategory.find((c) => c.category === category);
  const per1000 = (p: ProfileResult | undefined, share: number | undefined) => (p && share !== undefined ? cpuPer1000(p, share).toFixed(1) : "—");
  const rows = categories.map((category) => {
    const b = find(before, category);
    const a = find(after, category);
    return [category, per1000(before, b?.share), pct(b?.share), per1000(after, a?.share), pct(a?.share)];
  });
  rows.push([
    "**all (broker CPU time, profiler on)**",
    before ? `**${cpuPer1000(before).toFixed(1)}**` : "—",
    before ? "100%" : "—",
    after ? `**${cpuPer1000(after).toFixed(1)}**` : "—",
    after ? "100%" : "—",
  ]);
  rows.push(["*the same phase without the profiler*", before?.unprofiledPer1000?.toFixed(1) ?? "—", "", after?.unprofiledPer1000?.toFixed(1) ?? "—", ""]);
  lines.push(mdTable(["category (self time)", "before: CPU ms per 1,000 deliveries", "before: share", "after: CPU ms per 1,000 deliveries", "after: share"], rows), "");
  for (const [name, p] of [
    ["Before", before],
    ["After", after],
  ] as const) {
    lines.push(`${name} (${p?.label ?? "not available"}): top functions by self time`, "");
    if (p)
      lines.push(
        mdTable(
          ["function", "where", "share of busy", "CPU ms per 1,000 deliveries"],
          p.summary.top.map((f) => [`\`${f.fn}\``, f.where, pct(f.share), cpuPer1000(p, f.share).toFixed(2)]),
          ["l", "l", "r", "r"],
        ),
        "",
      );
  }
  return lines;
}
