import type { Dependency } from "./engine.js";

/**
 * Causal dependencies as text, for the engines that store messages as rows
 * or strings (SQLite column, Redis body): a JSON array of
 * `[room, epoch, "sequence"]` triples (sequences as decimal strings: they are
 * uint64). Undefined for none, so messages without dependencies, nearly all
 * of them, store nothing extra.
 */
export function encodeDependencies(dependencies: Dependency[] | undefined): string | undefined {
  if (!dependencies || dependencies.length === 0) return undefined;
  return JSON.stringify(dependencies.map((d) => [d.room, d.epoch, d.sequence.toString()]));
}

export function decodeDependencies(text: string | null | undefined): Dependency[] | undefined {
  if (!text) return undefined;
  const triples = JSON.parse(text) as Array<[string, string, string]>;
  return triples.map(([room, epoch, sequence]) => ({ room, epoch, sequence: BigInt(sequence) }));
}
