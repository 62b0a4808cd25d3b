import http2 from "node:http2";
import type { H2Stream } from "../h2/stream.js";
import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Broker } from "../../broker/broker.js";
import { BrokerError, isCutOff } from "../../broker/errors.js";
import type { Identity } from "../../broker/identity.js";
import type { EventSink } from "../../broker/outbox.js";
import type { Session, SessionEvent } from "../../broker/session.js";
import { GetHistoryRequestSchema, PubSubService, SubscribeRequestSchema } from "../../../gen/es/seqcast/v1/pubsub_pb.js";
import { publishResponseFrame, publishResultsFrame } from "../ack-encoder.js";
import { subscribeFrame } from "../event-encoding.js";
import { PublishResults } from "../publish-results.js";
import { MAX_BATCH } from "../pubsub-service.js";
import { historyInput, toRoomRequests } from "../room-requests.js";
import { UNARY_RPCS, type UnaryRpc } from "../unary-rpcs.js";
import { historyResponseFrame } from "../history-encoder.js";
import { GrpcCall } from "./call.js";
import { decodePublishRequest, decodePublishRequests } from "../wire-decoders.js";
import type { PublishInput } from "../../broker/broker.js";
import { frame, FrameDecoder, RequestBudget } from "./frames.js";

/**
 * The hot RPCs of PubSubService for gRPC with binary protobuf, served on the
 * `node:http2` stream directly: Subscribe, Publish, PublishStream,
 * PublishBatch, GetHistory (gap fills, resumes and causal waits read it) and
 * the small unary RPCs (unary-rpcs.ts: Join, Leave, Ack, ClearHistory,
 * SetPresence, GetPresence); through connect-node's unary pipeline each of
 * those cost the broker about three times as much. Every other protocol
 * and codec (Connect, gRPC-Web, JSON, HTTP/1.1) stays on connect-node; the
 * behaviour is the same (same broker calls, same authentication, same error
 * mapping through toConnectError), only the per-message costs differ: a Subscribe stream
 * gets one write per flush of pre-encoded bytes, with no async iterator or
 * promise per event, and a Publish costs no more than its own work.
 */

export interface GrpcFastPathOptions {
  broker: Broker;
  /** Verifies the `authorization` header (throws BrokerError("unauthenticated")). */
  authenticate: (authorization: string | null) => Promise<Identity>;
  /** Largest request message read (RESOURCE_EXHAUSTED beyond). */
  readMaxBytes: number;
  /**
   * Largest Subscribe request read: what the most rooms a session may hold,
   * each with the largest filter, can take. Beyond it the request is dropped
   * unread (RESOURCE_EXHAUSTED, REQUEST_TOO_LARGE) instead of decoded only
   * to be refused: a 3.6 MB request of 3,500 filtered rooms took ~95 ms of
   * the event loop to decode (test/hostile/filters.test.ts).
   */
  subscribeReadMaxBytes?: number;
}

interface CallContext {
  call: GrpcCall;
  decoder: FrameDecoder;
  identity: Promise<Identity>;
  broker: Broker;
  options: GrpcFastPathOptions;
}

type Handler = (context: CallContext) => Promise<void> | void;

const prefix = `/${PubSubService.typeName}/`;
const HANDLERS = new Map<string, Handler>([
  [`${prefix}Subscribe`, subscribe],
  [`${prefix}Publish`, publish],
  [`${prefix}PublishStream`, publishStream],
  [`${prefix}PublishBatch`, publishBatch],
  [`${prefix}GetHistory`, getHistory],
  ...Object.values(UNARY_RPCS).map((rpc): [string, Handler] => [`${prefix}${rpc.name}`, unary<DescMessage, DescMessage>(rpc)]),
]);
const ENCODINGS = new Set(["identity", "gzip", "deflate"]);

/** Returns a stream handler that takes the calls it serves (true) and leaves the rest to connect-node (false). */
export function createGrpcFastPath(options: GrpcFastPathOptions): (stream: H2Stream, headers: http2.IncomingHttpHeaders) => boolean {
  return (stream, headers) => {
    const handler = HANDLERS.get(headers[":path"] ?? "");
    const contentType = headers["content-type"];
    if (!handler || headers[":method"] !== "POST" || (contentType !== "application/grpc" && contentType !== "application/grpc+proto"))
      return false;
    const call = new GrpcCall(stream, contentType, headers["grpc-timeout"] as string | undefined);
    const encoding = headers["grpc-encoding"] as string | undefined;
    if (encoding !== undefined && !ENCODINGS.has(encoding)) {
      call.finish(new ConnectError(`grpc-encoding ${encoding} is not supported (use identity, gzip or deflate)`, Code.Unimplemented));
      return true;
    }
    const identity = options.authenticate((headers.authorization as string | undefined) ?? null);
    identity.catch(() => {}); // reported by the handler that awaits it
    const readMaxBytes = handler === subscribe ? Math.min(options.readMaxBytes, options.subscribeReadMaxBytes ?? Infinity) : options.readMaxBytes;
    const decoder = new FrameDecoder(readMaxBytes, encoding === "identity" ? undefined : encoding, budgetOf(stream, options));
    call.onClose(() => decoder.release());
    const context: CallContext = { call, decoder, identity, broker: options.broker, options };
    try {
      const running = handler(context);
      if (running) running.catch((error: unknown) => call.finish(error));
    } catch (error) {
      call.finish(error);
    }
    return true;
  };
}

/** The request budget of a stream's connection (RequestBudget): four of the largest requests, and no less than 64 MiB. */
const budgets = new WeakMap<object, RequestBudget>();
function budgetOf(stream: H2Stream, options: GrpcFastPathOptions): RequestBudget {
  let budget = budgets.get(stream.h2);
  if (!budget) budgets.set(stream.h2, (budget = new RequestBudget(Math.max(64 * 1024 * 1024, 4 * options.readMaxBytes))));
  return budget;
}

/**
 * The one request message of a unary or server-streaming call, once the
 * client half-closed. Its listener goes with the request: an open Subscribe
 * stream keeps none of it (nor the promise's functions) for its lifetime.
 */
function readOne(context: CallContext): Promise<Uint8Array> {
  return new Promise((resolve, reject) => new OneMessage(context, resolve, reject));
}

/**
 * readOne()'s listeners. A class with bound methods rather than two named
 * arrow functions: run through tsx (esbuild's keepNames), each of those had
 * its name set by Object.defineProperty for every request, about 0.3 µs of
 * a unary call's broker CPU (SubscribeSink below has the same reason).
 */
class OneMessage {
  private readonly messages: Uint8Array[] = [];
  private readonly read: (chunk: Buffer) => void;

  constructor(
    private readonly context: CallContext,
    private readonly resolve: (message: Uint8Array) => void,
    private readonly reject: (error: unknown) => void,
  ) {
    this.read = this.onData.bind(this);
    context.call.stream.on("data", this.read);
    context.call.stream.once("end", this.onEnd.bind(this));
  }

  // A second message fails the call at once: waiting for the end of the
  // request kept every message a client sent, without bound.
  private fail(error: unknown): void {
    this.context.call.stream.off("data", this.read);
    this.reject(error);
  }

  private onData(chunk: Buffer): void {
    const { decoder } = this.context;
    try {
      for (const message of decoder.push(chunk)) {
        if (this.messages.length > 0) return this.fail(new BrokerError("invalid_argument", "protocol error: expected one request message, got a second before the request ended"));
        // Kept until the request ends: it counts toward the connection's budget meanwhile.
        if (!decoder.hold(message.length)) return this.fail(decoder.refused);
        this.messages.push(message);
      }
    } catch (error) {
      this.fail(error);
    }
  }

  private onEnd(): void {
    const { call, decoder } = this.context;
    const { messages } = this;
    call.stream.off("data", this.read);
    const partial = decoder.partialBytes;
    // The handler has the message now (or the call fails): it leaves the connection's budget.
    decoder.release();
    if (decoder.refused) this.reject(decoder.refused);
    else if (messages.length === 1 && partial === 0) this.resolve(messages[0]!);
    else this.reject(new BrokerError("invalid_argument", `protocol error: expected one request message, got ${messages.length}${partial ? " and a partial one" : ""}`));
  }
}

function decodeWith<T>(typeName: string, decoder: (bytes: Uint8Array) => T, bytes: Uint8Array): T {
  try {
    return decoder(bytes);
  } catch (error) {
    throw new BrokerError("invalid_argument", `request is not a valid ${typeName}: ${(error as Error).message}`);
  }
}

function decode<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array): MessageShape<Desc> {
  try {
    return fromBinary(schema, bytes);
  } catch (error) {
    throw new BrokerError("invalid_argument", `request is not a valid ${schema.typeName}: ${(error as Error).message}`);
  }
}

async function publish(context: CallContext): Promise<void> {
  const { call, broker } = context;
  const request = decodeWith("seqcast.v1.PublishRequest", decodePublishRequest, await readOne(context));
  const caller = await context.identity;
  await broker.readersKeepingUp([request]);
  const result = await broker.publish(caller, request);
  // A client that went away still has its message stored: a retry with its id finds it.
  if (call.done) return;
  call.write(publishResponseFrame(result));
  call.finish();
}

async function publishBatch(context: CallContext): Promise<void> {
  const { call, broker } = context;
  const messages = decodeWith("seqcast.v1.PublishBatchRequest", decodePublishRequests, await readOne(context));
  const caller = await context.identity;
  if (messages.length === 0 || messages.length > MAX_BATCH)
    throw new BrokerError("invalid_argument", `messages: ${messages.length} given, 1-${MAX_BATCH} allowed`, { metadata: { field: "messages" } });
  await broker.readersKeepingUp(messages);
  const outcomes = await broker.publishMany(caller, messages);
  if (call.done) return;
  call.write(publishResultsFrame(outcomes.map((outcome, i) => ({ clientMessageId: messages[i]!.clientMessageId, outcome }))));
  call.finish();
}

/** One of the small unary RPCs (unary-rpcs.ts), with the implementation connect-node runs; protobuf-es decodes and encodes. */
function unary<I extends DescMessage, O extends DescMessage>(rpc: UnaryRpc<I, O>): Handler {
  return async (context) => {
    const { call, broker } = context;
    const request = decode(rpc.input, await readOne(context));
    const response = await rpc.run(broker, await context.identity, request);
    if (call.done) return;
    call.write(frame(toBinary(rpc.output, response)));
    call.finish();
  };
}

async function getHistory(context: CallContext): Promise<void> {
  const { call, broker } = context;
  const request = decode(GetHistoryRequestSchema, await readOne(context));
  const page = await broker.history(await context.identity, historyInput(request));
  if (call.done) return;
  call.write(historyResponseFrame(page));
  call.finish();
}

/**
 * Bidirectional: messages are published in arrival order as their frames
 * arrive; results go back in that order, batched per event-loop turn. A
 * client that does not read its results stops being read (backpressure).
 */
function publishStream(context: CallContext): void {
  const { call, decoder, broker } = context;
  const { stream } = call;
  let caller: Identity | undefined;
  let inputEnded = false;
  const waiting: PublishInput[][] = [];
  // Reading stops while the client does not read its results (backpressure),
  // while subscribers that still read fell behind (Broker.readersKeepingUp),
  // and while the caller's token is being verified: a client may send a whole
  // HTTP/2 window (1 MiB) meanwhile, and published at once it would fill a
  // slow reader's queue before the next check could hold the publisher back.
  let resultsBlocked = false;
  let readersBehind = false;
  // On shutdown: read no more, and end with UNAVAILABLE (SHUTTING_DOWN) after
  // the results of what was read; the client resends the rest elsewhere.
  let shuttingDown = false;
  const resumeReading = () => {
    if (!resultsBlocked && !readersBehind && caller !== undefined && !call.done && !shuttingDown) stream.resume();
  };
  const results = new PublishResults(
    (batch) => {
      if (call.write(publishResultsFrame(batch))) return;
      resultsBlocked = true;
      stream.pause();
    },
    (error) => {
      offClose();
      call.finish(error);
    },
  );
  const offClose = broker.onClose((error) => {
    shuttingDown = true;
    stream.pause();
    results.close(error);
  });
  call.onClose(() => offClose());
  const add = (messages: PublishInput[]) =>
    results.addMany(
      messages.map((m) => m.clientMessageId),
      broker.publishMany(caller!, messages),
    );
  /** Stops reading until the subscribers of what was just published that fell behind caught up. */
  const holdForReaders = (sent: PublishInput[][]) => {
    const behind = readersBehind || broker.readerBacklog.size === 0 ? undefined : broker.readersKeepingUp(sent.flat());
    if (!behind) return;
    readersBehind = true;
    stream.pause();
    void behind.then(() => {
      readersBehind = false;
      resumeReading();
    });
  };
  stream.on("drain", () => {
    resultsBlocked = false;
    resumeReading();
  });
  context.identity.then(
    (identity) => {
      if (shuttingDown || call.done) return;
      caller = identity;
      call.respond();
      const sent = waiting.splice(0);
      for (const messages of sent) add(messages);
      if (inputEnded) results.close();
      holdForReaders(sent);
      resumeReading();
    },
    (error: unknown) => call.finish(error),
  );
  stream.on("data", (chunk: Buffer) => {
    if (call.done || shuttingDown) return;
    const sent: PublishInput[][] = [];
    try {
      for (const bytes of decoder.push(chunk)) {
        const messages = decodeWith("seqcast.v1.PublishStreamRequest", decodePublishRequests, bytes);
        if (messages.length === 0) continue;
        sent.push(messages);
        if (caller) add(messages);
        else waiting.push(messages);
      }
    } catch (error) {
      results.fail(error);
    }
    if (caller) holdForReaders(sent);
    else if (waiting.length > 0) stream.pause();
  });
  stream.once("end", () => {
    inputEnded = true;
    if (decoder.refused) results.fail(decoder.refused);
    else if (decoder.partialBytes > 0) results.fail(new BrokerError("invalid_argument", "protocol error: the request stream ended inside a message"));
    else if (caller) results.close();
  });
}

async function subscribe(context: CallContext): Promise<void> {
  const { call, broker } = context;
  const request = decode(SubscribeRequestSchema, await readOne(context));
  const caller = await context.identity;
  if (call.done) return;
  const session = broker.openSession(caller, request.device, request.subscriber, request.previousSessionId);
  session.compactDependencies = request.compactDependencies;
  let joined: Promise<void>;
  try {
    // Throws synchronously on bad rooms: the call fails before it sends anything.
    joined = broker.join(session, toRoomRequests(request.rooms));
  } catch (error) {
    await broker.closeSession(session);
    throw error;
  }
  joined.then(
    () => broker.settleAdoption(session),
    (error: unknown) => broker.closeSession(session, error instanceof BrokerError ? error : new BrokerError("internal", String(error))),
  );
  call.respond();
  call.stream.on("drain", () => session.resume());
  // The client went away without a goodbye (or cancelled): its presence lingers for the grace period.
  call.onClose((byPeer) => void broker.closeSession(session, undefined, undefined, byPeer));
  session.attach(new SubscribeSink(call, broker, session));
}

/**
 * Where a Subscribe call's session writes: its stream. A class rather than an
 * object literal of arrow functions, which tsx (esbuild's keepNames) would
 * name one by one through Object.defineProperty for every stream opened
 * (about 300 ns and 250 bytes of heap each, for as long as the stream lives).
 */
class SubscribeSink implements EventSink {
  constructor(
    private readonly call: GrpcCall,
    private readonly broker: Broker,
    private readonly session: Session,
  ) {}

  write(events: SessionEvent[]): boolean {
    return this.call.write(subscribeFrame(events));
  }

  end(error: BrokerError | undefined): void {
    const { call, broker } = this;
    call.finish(error);
    if (!isCutOff(error)) return;
    // Gone at once for everyone else (presence, queues); the stream itself
    // gets a moment to deliver its trailers, then is reset: a reader that
    // stopped reading cannot receive them.
    void broker.closeSession(this.session);
    const reset = setTimeout(() => call.reset(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM), broker.config.slowConsumerGraceMs);
    reset.unref();
    call.onClose(() => clearTimeout(reset));
  }
}
