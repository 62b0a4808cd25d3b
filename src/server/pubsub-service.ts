import { create } from "@bufbuild/protobuf";
import { createContextKey, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Identity } from "../broker/identity.js";
import type { Broker } from "../broker/broker.js";
import { BrokerError, isCutOff } from "../broker/errors.js";
import {
  GetHistoryResponseSchema,
  PublishBatchResponseSchema,
  PublishStreamResponseSchema,
  PubSubService,
  type PublishResult,
  type PublishStreamResponse,
  type SubscribeResponse,
} from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { toPbMessage, toPbPosition, toPbPublishResponse, toPbPublishResult, toPbResponse } from "./convert.js";
import { toConnectError } from "./errors.js";
import { toPbResponseEncoded } from "./event-encoding.js";
import { historyInput, toRoomRequests } from "./room-requests.js";
import { UNARY_RPCS } from "./unary-rpcs.js";
import { PublishResults } from "./publish-results.js";
import { ResultQueue } from "./result-queue.js";

/** Events per stream message; a burst is sent as few large writes, not many small ones. */
const MAX_EVENTS_PER_RESPONSE = 256;
/** Messages per PublishBatch. */
export const MAX_BATCH = 1000;

/** Set by the authentication interceptor (src/server/server.ts) for every PubSubService call. */
export const IDENTITY = createContextKey<Identity | undefined>(undefined, { description: "seqcast identity" });
/**
 * Resets the request's HTTP/2 stream (or closes its HTTP/1.1 connection):
 * for a stream whose final status cannot be written because its reader
 * stopped reading (set by the server for every request).
 */
export const RESET_STREAM = createContextKey<(() => void) | undefined>(undefined, { description: "reset the request's stream" });

/** The caller's verified identity. */
export function identity(context: HandlerContext): Identity {
  const value = context.values.get(IDENTITY);
  // The interceptor rejects unauthenticated calls before any handler runs.
  if (!value) throw new BrokerError("internal", "no identity on an authenticated call");
  return value;
}

/** Unary handlers share one error path: everything thrown goes through toConnectError. */
async function guarded<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw toConnectError(error);
  }
}

export function pubSubService(broker: Broker): ServiceImpl<typeof PubSubService> {
  return {
    publish: (request, context) =>
      guarded(async () => {
        const caller = identity(context);
        // Subscribers that fell behind but still read set the pace (Broker.readersKeepingUp).
        await broker.readersKeepingUp([request]);
        return toPbPublishResponse(await broker.publish(caller, request));
      }),

    async *publishStream(requests, context): AsyncGenerator<PublishStreamResponse> {
      const caller = identity(context);
      const out = new ResultQueue<PublishResult[]>();
      const results = new PublishResults(
        (batch) => out.push(batch.map((r) => toPbPublishResult(r.clientMessageId, r.outcome))),
        (error) => {
          offClose();
          out.end(error);
        },
      );
      // On shutdown: read no more, and end with UNAVAILABLE (SHUTTING_DOWN) after the results of what was read.
      let shuttingDown = false;
      const offClose = broker.onClose((error) => {
        shuttingDown = true;
        results.close(error);
      });
      context.signal.addEventListener("abort", offClose, { once: true });
      void (async () => {
        for await (const request of requests) {
          if (shuttingDown) break;
          if (request.messages.length === 0) continue;
          results.addMany(
            request.messages.map((m) => m.clientMessageId),
            broker.publishMany(caller, request.messages),
          );
          // The next request is read once subscribers that fell behind caught up.
          await broker.readersKeepingUp(request.messages);
        }
        results.close();
      })().catch((error: unknown) => results.fail(error));
      try {
        for await (const batch of out) yield create(PublishStreamResponseSchema, { results: batch });
      } catch (error) {
        if (context.signal.aborted) throw error;
        throw toConnectError(error);
      }
    },

    publishBatch: (request, context) =>
      guarded(async () => {
        const caller = identity(context);
        if (request.messages.length === 0 || request.messages.length > MAX_BATCH)
          throw new BrokerError("invalid_argument", `messages: ${request.messages.length} given, 1-${MAX_BATCH} allowed`, {
            metadata: { field: "messages" },
          });
        await broker.readersKeepingUp(request.messages);
        const outcomes = await broker.publishMany(caller, request.messages);
        return create(PublishBatchResponseSchema, {
          results: outcomes.map((outcome, i) => toPbPublishResult(request.messages[i]!.clientMessageId, outcome)),
        });
      }),

    async *subscribe(request, context): AsyncGenerator<SubscribeResponse> {
      let session;
      try {
        session = broker.openSession(identity(context), request.device, request.subscriber, request.previousSessionId);
        session.compactDependencies = request.compactDependencies;
        const rooms = toRoomRequests(request.rooms);
        // Throws synchronously on bad rooms: the stream fails before sending anything.
        const joined = broker.join(session, rooms);
        const active = session;
        joined.then(
          () => broker.settleAdoption(active),
          (error: unknown) =>
            broker.closeSession(active, error instanceof BrokerError ? error : new BrokerError("internal", String(error))),
        );
      } catch (error) {
        if (session) await broker.closeSession(session);
        throw toConnectError(error);
      }
      // The client went away without a goodbye (or cancelled): its presence lingers for the grace period.
      const closeOnAbort = () => void broker.closeSession(session, undefined, undefined, true);
      context.signal.addEventListener("abort", closeOnAbort);
      // Binary codecs get each message's bytes encoded once for all streams.
      const encode = /json/i.test(context.requestHeader.get("content-type") ?? "") ? toPbResponse : toPbResponseEncoded;
      // Cut off as too slow: its trailers wait behind what the reader stopped reading; after the grace, reset the stream.
      let reset: NodeJS.Timeout | undefined;
      const onEnd = (error: BrokerError | undefined) => {
        const resetStream = context.values.get(RESET_STREAM);
        if (!isCutOff(error) || !resetStream || context.signal.aborted) return;
        reset = setTimeout(resetStream, broker.config.slowConsumerGraceMs);
        reset.unref();
      };
      try {
        for await (const batch of session.batches(MAX_EVENTS_PER_RESPONSE, onEnd)) yield encode(batch);
      } catch (error) {
        // The client is gone (writing to its stream failed): nothing to report to it.
        if (context.signal.aborted) throw error;
        throw toConnectError(error);
      } finally {
        clearTimeout(reset);
        context.signal.removeEventListener("abort", closeOnAbort);
        await broker.closeSession(session);
      }
    },

    join: (request, context) => guarded(() => UNARY_RPCS.join.run(broker, identity(context), request)),
    leave: (request, context) => guarded(() => UNARY_RPCS.leave.run(broker, identity(context), request)),
    ack: (request, context) => guarded(() => UNARY_RPCS.ack.run(broker, identity(context), request)),
    clearHistory: (request, context) => guarded(() => UNARY_RPCS.clearHistory.run(broker, identity(context), request)),

    getHistory: (request, context) =>
      guarded(async () => {
        const page = await broker.history(identity(context), historyInput(request));
        return create(GetHistoryResponseSchema, {
          messages: page.messages.map((m) => toPbMessage(m)),
          position: toPbPosition(page.position),
          firstSequence: page.firstSequence,
          hasMore: page.hasMore,
        });
      }),

    setPresence: (request, context) => guarded(() => UNARY_RPCS.setPresence.run(broker, identity(context), request)),
    getPresence: (request, context) => guarded(() => UNARY_RPCS.getPresence.run(broker, identity(context), request)),
  };
}
