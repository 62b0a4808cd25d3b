import type { Transport } from "@connectrpc/connect";
import { isNodeFailure } from "./retry.js";

/**
 * Several broker nodes of one deployment (sharing one Redis) behind one
 * Transport. Calls go to the current node; when one fails because of the
 * node (connection refused or dropped, node shutting down, its storage
 * unreachable), later calls go to the next node, round robin.
 *
 * The failed call itself still fails: whether to try again stays with the
 * caller's retry policy (the publish queue resends with the same client
 * message id, a subscription resumes from its positions), so every guarantee
 * of one node holds across a failover unchanged.
 */
export function createFailoverTransport(transports: readonly Transport[]): Transport & { readonly current: number } {
  if (transports.length === 0) throw new Error("createFailoverTransport: needs at least one transport");
  let current = 0;
  /** A call that went to node `index` failed: move on, unless another failure moved on already. */
  const failed = (index: number, error: unknown, signal: AbortSignal | undefined) => {
    if (signal?.aborted) return; // our own cancellation, not the node's fault
    if (index === current && isNodeFailure(error)) current = (index + 1) % transports.length;
  };
  return {
    get current() {
      return current;
    },
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      const index = current;
      try {
        return await transports[index]!.unary(method, signal, timeoutMs, header, input, contextValues);
      } catch (error) {
        failed(index, error, signal);
        throw error;
      }
    },
    async stream(method, signal, timeoutMs, header, input, contextValues) {
      const index = current;
      let response;
      try {
        response = await transports[index]!.stream(method, signal, timeoutMs, header, input, contextValues);
      } catch (error) {
        failed(index, error, signal);
        throw error;
      }
      // A stream also fails later, mid-way (the node died while we listened).
      const messages = response.message;
      async function* watched() {
        try {
          yield* messages;
        } catch (error) {
          failed(index, error, signal);
          throw error;
        }
      }
      return { ...response, message: watched() };
    },
  };
}
