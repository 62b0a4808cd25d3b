export { SeqcastClient, createSeqcastClient } from "./client.js";
export type {
  SeqcastClientOptions,
  PublishOptions,
  PublishResult,
  HistoryOptions,
  HistoryResult,
  PresenceResult,
} from "./client.js";
export { Subscription, SubscriptionState } from "./subscription.js";
export type { SubscriptionEvent, SubscriptionListener, SubscriptionOptions } from "./subscription.js";
export { ReorderBuffer } from "./reorder-buffer.js";
export type { BufferPosition, HistoryFill, ReorderOutput, ResetReason, Sequenced } from "./reorder-buffer.js";
export { backoffDelay, defaultBackoff, errorReason, isRetryable, retryAfterMs, retryDelay } from "./retry.js";
export type { BackoffPolicy } from "./retry.js";
export { createTransport } from "./transport.js";
export { createFailoverTransport } from "./failover.js";
export type { Protocol, TransportOptions } from "./transport.js";
export { withToken } from "./auth.js";
export type { TokenSource } from "./auth.js";
