import { createConnectTransport } from "@connectrpc/connect-web";
import { SeqcastClient, type SeqcastClientOptions } from "./client.js";

// The SDK's browser entry: the same client, subscription and reorder buffer
// as in Node, on connect-web's fetch transport. Nothing here (or below it)
// may import a node: module; the page's build (scripts/build-web.ts, esbuild
// with platform "browser") fails if anything does.

export interface WebClientOptions extends Omit<SeqcastClientOptions, "transport"> {
  /** Broker URL; the page uses its own origin (the broker serves it). */
  baseUrl: string;
}

/**
 * A SeqcastClient over the Connect protocol on fetch: unary calls and the
 * Subscribe server stream work on HTTP/1.1, with binary protobuf bodies.
 */
export function createWebSeqcastClient(options: WebClientOptions): SeqcastClient {
  const { baseUrl, ...rest } = options;
  return new SeqcastClient({ ...rest, transport: createConnectTransport({ baseUrl, useBinaryFormat: true }) });
}

export { SeqcastClient } from "./client.js";
export type { HistoryResult, PresenceResult, PublishResult } from "./client.js";
export { Subscription, SubscriptionState } from "./subscription.js";
export type { SubscriptionEvent, SubscriptionOptions } from "./subscription.js";
export { errorReason, isRetryable } from "./retry.js";
