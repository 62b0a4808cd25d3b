import type { Dependency } from "./causal-gate.js";

/**
 * What a client had seen when it publishes: the causal dependencies the SDK
 * attaches to every publish by itself (PublishRequest.dependencies).
 *
 * It keeps, per room, the last position its application received (from any
 * of the client's subscriptions) or that it published (once acknowledged),
 * for the `maxRooms` most recently active rooms. A publish depends on those
 * positions, except in its own room (per-room order covers that), plus an
 * explicit `replyTo`.
 *
 * Why that is enough, within the bound. A message m depends on the last
 * position L(R) its publisher had in each recent room R. A subscriber
 * delivers m only after L(R); its room R comes in order, so everything
 * before L(R) in R (everything the publisher had seen of R) came first.
 * And the subscriber delivered L(R), and anything else the publisher had
 * seen, only after *their* dependencies: the publisher's own gate released
 * them only after theirs, which therefore are at or before the positions
 * it holds now. So dependencies are complete transitively: what the
 * publisher had seen in any room it held, directly or by a chain of
 * messages, is delivered first, as long as each link of the chain is
 * within its publisher's `maxRooms` most recent rooms. What the bound
 * gives up: a room the publisher has not been active in for `maxRooms`
 * other rooms is no longer a direct dependency (a chain through a message
 * that carried it still is), and a message its own gate released after the
 * wait carries no guarantee about what it had been waiting for.
 *
 * Inboxes are never automatic dependencies: only their owner may read them,
 * so nobody else could wait on them, and their positions would tell other
 * readers how many private messages someone received. (`replyTo` may name
 * one.) Metadata per message: at most maxRooms + 1 positions, each a room
 * name, an epoch and a sequence (~40 bytes).
 */
export const DEFAULT_CAUSAL_ROOMS = 8;

export class CausalContext {
  /** Room → last position, least recently active first (Map order). */
  private readonly last = new Map<string, Dependency>();

  constructor(private readonly maxRooms = DEFAULT_CAUSAL_ROOMS) {}

  get enabled(): boolean {
    return this.maxRooms > 0;
  }

  /** The application received, or the broker acknowledged, the message at this position. */
  observe(room: string, epoch: string, sequence: bigint): void {
    if (this.maxRooms <= 0 || room.startsWith("@") || sequence <= 0n) return;
    const known = this.last.get(room);
    // Within an epoch positions only move forward (a late acknowledgement may arrive after newer deliveries).
    if (known && known.epoch === epoch && known.sequence >= sequence) return;
    this.last.delete(room);
    this.last.set(room, { room, epoch, sequence });
    if (this.last.size > this.maxRooms) this.last.delete(this.last.keys().next().value!);
  }

  /** The dependencies of a publish to `room` now. */
  dependenciesFor(room: string, replyTo?: Dependency): Dependency[] {
    const out: Dependency[] = [];
    for (const dependency of this.last.values()) if (dependency.room !== room) out.push(dependency);
    if (replyTo) out.push({ room: replyTo.room, epoch: replyTo.epoch, sequence: replyTo.sequence });
    return out;
  }
}
