/** Number formats and markdown tables of the report. */
const ok = (v: number | undefined): v is number => v !== undefined && Number.isFinite(v);

export const fmtInt = (v: number | undefined) => (ok(v) ? Math.round(v).toLocaleString("en-US") : "—");
export const fmtMs = (v: number | undefined) => (ok(v) ? v.toFixed(2) : "—");
export const fmtMiB = (v: number | undefined) => (ok(v) ? v.toFixed(1) : "—");
export const fmtNum = (v: number | undefined, digits = 2) => (ok(v) ? v.toFixed(digits) : "—");
export const fmtPct = (v: number | undefined) => (ok(v) ? (v < 10 ? `${v.toFixed(1)}%` : `${Math.round(v)}%`) : "—");
export const ratio = (a: number | undefined, b: number | undefined) => (ok(a) && ok(b) && b !== 0 ? a / b : undefined);
export const fmtRatio = (v: number | undefined) => (ok(v) ? `${v.toFixed(2)}×` : "—");
export const fmtCores = (v: number | undefined) => (ok(v) ? v.toFixed(2) : "—");

/** A markdown table; `align` per column: "l" or "r". */
export function mdTable(header: string[], rows: string[][], align?: Array<"l" | "r">): string {
  const rule = header.map((_, i) => ((align?.[i] ?? (i === 0 ? "l" : "r")) === "r" ? "--:" : "---"));
  return [header, rule, ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}
