import type { HistoryPage, PresenceEntry } from "../engine/engine.js";
import type { FilterCompiler } from "./filter.js";
import { filteredPage, historyQuery, type HistoryInput, type ReadHistory } from "./history.js";
import { checkRead, type Identity } from "./identity.js";
import type { UserQuotas } from "./user-quotas.js";
import { validateRoom } from "./validate.js";

export interface PresenceSnapshot {
  entries: PresenceEntry[];
  userCount: number;
  sessionCount: number;
}

/** What the queries use of the broker (broker.ts). */
export interface RoomReadsContext {
  readonly quotas: UserQuotas;
  readonly filters: FilterCompiler;
  now(): number;
  /** A page of the room's history, engine failures mapped (Broker.callEngine). */
  readonly readHistory: ReadHistory;
  presenceList(room: string): Promise<PresenceEntry[]>;
}

/**
 * The queries on one room, GetHistory and GetPresence: the room name, the
 * caller's read permission and its rate of rooms (userRoomsPerSecond) are
 * checked before the engine is asked.
 */
export class RoomReads {
  constructor(private readonly broker: RoomReadsContext) {}

  async history(identity: Identity, input: HistoryInput): Promise<HistoryPage> {
    this.check(identity, input.room);
    const filter = input.filter ? this.broker.filters.compile(input.filter, "filter") : undefined;
    const query = historyQuery(input);
    return filter ? filteredPage(this.broker.readHistory, input.room, query, filter) : this.broker.readHistory(input.room, query);
  }

  async presence(identity: Identity, room: string): Promise<PresenceSnapshot> {
    this.check(identity, room);
    const entries = await this.broker.presenceList(room);
    return { entries, userCount: new Set(entries.map((e) => e.user)).size, sessionCount: entries.length };
  }

  private check(identity: Identity, room: string): void {
    validateRoom(room);
    checkRead(identity, room);
    this.broker.quotas.touch(identity, [room], this.broker.now());
  }
}
