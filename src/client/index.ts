// The SDK's Node entry (the browser's is ./web.ts).
export { SeqcastClient } from "./client.js";
export { createSeqcastClient } from "./node.js";
export type { NodeClientOptions } from "./node.js";
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
export { CausalGate, CausalPlaces, systemGateClock } from "./causal-gate.js";
export type { CausalGateOptions, CausalItem, Dependency, GateClock, GateRelease } from "./causal-gate.js";
export { CausalContext, DEFAULT_CAUSAL_ROOMS } from "./causal-context.js";
export type { BufferPosition, HistoryFill, ReorderOutput, ResetReason, Sequenced } from "./reorder-buffer.js";
export { backoffDelay, defaultBackoff, errorReason, isRetryable, retryAfterMs, retryDelay } from "./retry.js";
export type { BackoffPolicy } from "./retry.js";
export { createTransport } from "./transport.js";
export type { Protocol, TransportOptions } from "./transport.js";
export { withToken } from "./auth.js";
export type { TokenSource } from "./auth.js";
export { createFailoverTransport } from "./failover.js";
