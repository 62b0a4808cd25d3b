import type { ConnectError } from "@connectrpc/connect";
import { PresenceEventKind } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import type { Message, PresenceEntry } from "../../gen/es/seqcast/v1/types_pb.js";
import type { ResetReason } from "./reorder-buffer.js";
import type { BackoffPolicy } from "./retry.js";
import type { GateClock } from "./causal-gate.js";

// What a Subscription tells its application, and how it is configured.

/**
 * Lifecycle of a subscription (one session that survives reconnects):
 *
 *   connecting ──session started──▶ connected ──stream lost──▶ reconnecting
 *        │                              ▲                          │
 *        │                              └──────session started─────┘
 *        └──────── terminal error or close() ──────▶ closed ◀───────┘
 */
export enum SubscriptionState {
  Connecting = "connecting",
  Connected = "connected",
  Reconnecting = "reconnecting",
  Closed = "closed",
}

export type SubscriptionEvent =
  | { type: "state"; from: SubscriptionState; to: SubscriptionState; reason: string; error?: ConnectError }
  | {
      type: "subscribed";
      room: string;
      epoch: string;
      sequence: bigint;
      recovered: boolean;
      /** Who is in the room now (the broker's list; empty for inboxes and patterns). Replaces what was known after a reconnect. */
      present: PresenceEntry[];
    }
  /** The room's last messages before its first subscription (option `backlog`), oldest first, ahead of its live ones. */
  | { type: "backlog"; room: string; messages: Message[] }
  | {
      type: "message";
      room: string;
      message: Message;
      /**
       * Set only when the message was released after the causal wait
       * (option `causalWaitMs`) while these of its dependencies, in rooms
       * this subscription holds, were still undelivered (trimmed, cleared,
       * or too slow). A message that waited and got its dependencies has no
       * such mark: it simply comes after them.
       */
      unmetDependencies?: Array<{ room: string; epoch: string; sequence: bigint }>;
    }
  | {
      type: "reset";
      room: string;
      reason: ResetReason;
      /** Delivery continues after this position. */
      epoch: string;
      sequence: bigint;
      /** Sequences that were lost within the epoch (0 for an epoch change). */
      skipped: bigint;
    }
  | { type: "presence"; room: string; kind: "join" | "leave" | "update"; entry: PresenceEntry }
  | { type: "unsubscribed"; room: string }
  /** A problem the subscription recovers from by itself (e.g. a failed gap fill). */
  | { type: "warning"; error: Error };

export type SubscriptionListener = (event: SubscriptionEvent) => void;

export interface SubscriptionOptions {
  /** Device label shown in presence. */
  device?: string;
  /** How long a hole may stay open before it is filled from history (ms). */
  gapFillDelayMs?: number;
  backoff?: BackoffPolicy;
  /** Heartbeat intervals of silence after which the stream is presumed dead. */
  missedHeartbeats?: number;
  /**
   * On a room's first subscription, unless it resumes (`since`, or a
   * durable subscriber's last ack), fetch up to this many earlier messages
   * and emit them as a `backlog` event before the room's live messages.
   * Default 0 (none).
   */
  backlog?: number;
  /** Resume positions per room, e.g. persisted from an earlier run. */
  since?: Record<string, { epoch: string; sequence: bigint }>;
  /**
   * Makes the session a durable subscriber (user, subscriber): the broker
   * keeps its acknowledged positions, and a later run without `since`
   * resumes after them.
   */
  subscriber?: string;
  /**
   * With a subscriber: "auto" (default) acknowledges each message once every
   * listener has returned from it; "manual" leaves it to `ack()`.
   */
  ack?: "auto" | "manual";
  /** Acks are batched per room and sent at most this often (ms, default 50). */
  ackIntervalMs?: number;
  /**
   * Mark the session away after this long without `markActive()` (ms);
   * `markActive()` brings it back online. Unset: never automatically away.
   */
  awayAfterMs?: number;
  /**
   * Content-based routing per room: a CEL expression evaluated in the broker
   * (see RoomSubscription.filter); only matching messages are delivered, in
   * order, without waiting for the ones it removed.
   */
  filters?: Record<string, string>;
  /**
   * Causal order across rooms: a message carrying dependencies
   * (Message.dependencies) in rooms this subscription holds is delivered
   * after them, fetching them from history if their room's stream lags;
   * after this long (ms, default 5000) it is delivered anyway, marked with
   * `unmetDependencies`. Dependencies in rooms not held are ignored.
   */
  causalWaitMs?: number;
  /** Time for the causal wait (tests move it); default the system clock. */
  causalClock?: GateClock;
}

export const PRESENCE_KINDS: Partial<Record<PresenceEventKind, "join" | "leave" | "update">> = {
  [PresenceEventKind.JOIN]: "join",
  [PresenceEventKind.LEAVE]: "leave",
  [PresenceEventKind.UPDATE]: "update",
};

