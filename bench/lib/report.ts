/**
 * What each scenario hands to the report: its markdown, its correctness
 * verdicts, and the targets it measured.
 */
import { fmtNum } from "./format.js";
import type { ProfileResult } from "./profile.js";

export interface Target {
  /** What is compared, as the issue words it. */
  name: string;
  measured: number | undefined;
  limit: number;
  /** "max": measured must be ≤ limit; "min": ≥ limit. */
  kind: "max" | "min";
  /** How to print values: a ratio (×), ms, MiB, %, or a rate. */
  unit: "×" | "ms" | "MiB" | "%" | "/s" | "missing";
  /** The row's absolute numbers, or why it could not be measured. */
  note?: string;
  /** The most CPU other processes used during the phases behind this target, in cores. */
  noise?: number;
}

/** Other processes' CPU above which a target's phases count as disturbed. */
export const NOISY_CORES = 0.25;

/** The most other processes used during some measured windows (undefined when none was measured). */
export function noiseOf(...cores: Array<number | undefined>): number | undefined {
  const known = cores.filter((c): c is number => c !== undefined && Number.isFinite(c));
  return known.length ? Math.max(...known) : undefined;
}

export interface Section {
  title: string;
  /** Markdown: what was run and how it was measured, then the tables. */
  body: string[];
  /** One line per row: OK/FAILED and what was checked. */
  correctness: string[];
  /** Per-row details: CPU of the bench process and of other processes, timings. */
  details: string[];
  targets: Target[];
  /** A row lost, duplicated or reordered a message, or a publish was not acknowledged. */
  failed: boolean;
  /** Fan-out: the CPU profile of seqcast's paced phase in this run. */
  profile?: ProfileResult;
}

export function targetStatus(t: Target): "PASS" | "FAIL" | "n/a" {
  if (t.measured === undefined || !Number.isFinite(t.measured)) return "n/a";
  return (t.kind === "max" ? t.measured <= t.limit : t.measured >= t.limit) ? "PASS" : "FAIL";
}

export function fmtTargetValue(value: number | undefined, unit: Target["unit"]): string {
  if (value === undefined || !Number.isFinite(value)) return "—";
  switch (unit) {
    case "×":
      return `${value.toFixed(2)}×`;
    case "ms":
      return `${value.toFixed(2)} ms`;
    case "MiB":
      return `${value.toFixed(0)} MiB`;
    case "%":
      return `${value.toFixed(1)}%`;
    case "/s":
      return `${Math.round(value).toLocaleString("en-US")}/s`;
    case "missing":
      return `${fmtNum(value, 0)} missing`;
  }
}
