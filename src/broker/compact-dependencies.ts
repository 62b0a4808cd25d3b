import type { Dependency, StoredMessage } from "../engine/engine.js";

/**
 * Compact causal dependencies (Message.dependency_refs and
 * Message.same_dependencies): a message's dependencies as sent to a stream
 * that sent the previous message of the room right before it. A publisher's
 * context rarely moves between two of its messages, so most of a message's
 * positions are in the list of the message before; they go as one byte each
 * (their index there) instead of ~40 (room, epoch, sequence), for every
 * subscriber of the room, and the very same list as one flag. With eight
 * dependencies sent whole, they were half of every delivery's bytes.
 */
export interface CompactDependencies {
  /** The very list of the previous message, in its order (Message.same_dependencies): refs and explicit are empty. */
  same: boolean;
  /** Byte i: index in the previous message's list of this message's i-th position, or REF_EXPLICIT. */
  refs: Uint8Array;
  /** The positions not named by index, in order. */
  explicit: Dependency[];
  /** The message's event in this form, as the transport encoded it once for every stream (event-encoding.ts). */
  encoded?: Uint8Array;
}

/** A dependency_refs byte that means "the next entry of `dependencies`". */
export const REF_EXPLICIT = 255;

const NO_REFS = new Uint8Array(0);

/**
 * `message`'s dependencies relative to those of `previous`, the message a
 * stream sent before it in its room: undefined unless `previous` is the one
 * right before it (sequence - 1, same epoch) and shares a position with it
 * (otherwise they go whole). Computed once per message: every stream that
 * qualifies has a previous message at the same position, with the same list
 * (a fan-out asks for one message for every stream in a row; another caller,
 * a replay, gets it computed anew).
 */
export function compactDependencies(message: StoredMessage, previous: StoredMessage): CompactDependencies | undefined {
  // Fan-out asks for one message for every session in a row, after the same previous message: small enough to inline.
  return message === last.message && previous === last.previous ? last.compact : compactAnew(message, previous);
}

function compactAnew(message: StoredMessage, previous: StoredMessage): CompactDependencies | undefined {
  last.message = message;
  last.previous = previous;
  last.compact =
    previous.sequence === message.sequence - 1n && previous.epoch === message.epoch
      ? compute(message.dependencies, previous.dependencies)
      : undefined;
  return last.compact;
}

const last: { message?: StoredMessage; previous?: StoredMessage; compact?: CompactDependencies } = {};

function compute(dependencies: readonly Dependency[] | undefined, before: readonly Dependency[] | undefined): CompactDependencies | undefined {
  if (!dependencies || dependencies.length === 0 || !before || before.length === 0) return undefined;
  // The common case: the publisher's context did not move (the wire decoder hands the same list, or the same positions).
  if (dependencies === before || (dependencies.length === before.length && dependencies.every((d, i) => d === before[i])))
    return { same: true, refs: NO_REFS, explicit: [] };
  const refs = new Uint8Array(dependencies.length);
  const explicit: Dependency[] = [];
  for (let i = 0; i < dependencies.length; i++) {
    const d = dependencies[i]!;
    refs[i] = REF_EXPLICIT;
    for (let j = 0; j < before.length && j < REF_EXPLICIT; j++) {
      const b = before[j]!;
      if (b === d || (b.sequence === d.sequence && b.room === d.room && b.epoch === d.epoch)) {
        refs[i] = j;
        break;
      }
    }
    if (refs[i] === REF_EXPLICIT) explicit.push(d);
  }
  if (explicit.length === dependencies.length) return undefined;
  if (explicit.length === 0 && dependencies.length === before.length && refs.every((r, i) => r === i)) return { same: true, refs: NO_REFS, explicit };
  return { same: false, refs, explicit };
}
