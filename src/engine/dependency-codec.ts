import type { Dependency } from "./engine.js";

/**
 * Causal dependencies as text, for the engines that store messages as rows
 * or strings (SQLite column, Redis body): a JSON array of
 * `[room, epoch, "sequence"]` triples (sequences as decimal strings: they are
 * uint64). Undefined for none, so messages without dependencies, nearly all
 * of them, store nothing extra.
 */
export function encodeDependencies(dependencies: readonly Dependency[] | undefined): string | undefined {
  if (!dependencies || dependencies.length === 0) return undefined;
  // A publisher's messages share one frozen list while its context does not move (wire-decoders.ts): its text once.
  if (dependencies === lastList) return lastText;
  const text = JSON.stringify(dependencies.map((d) => [d.room, d.epoch, d.sequence.toString()]));
  if (isImmutable(dependencies)) {
    lastList = dependencies;
    lastText = text;
  }
  return text;
}

let lastList: readonly Dependency[] | undefined;
let lastText: string | undefined;

/**
 * A list that can be known by identity: frozen, and its positions too (the
 * wire decoder's lists, see src/server/wire-decoders.ts). An encoder may
 * keep what it made of one and reuse it when the same list comes again.
 */
export function isImmutable(dependencies: readonly Dependency[]): boolean {
  return Object.isFrozen(dependencies) && dependencies.every((d) => Object.isFrozen(d));
}

export function decodeDependencies(text: string | null | undefined): Dependency[] | undefined {
  if (!text) return undefined;
  const triples = JSON.parse(text) as Array<[string, string, string]>;
  return triples.map(([room, epoch, sequence]) => ({ room, epoch, sequence: BigInt(sequence) }));
}
