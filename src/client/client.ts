import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { HistoryDirection, PubSubService } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import type { Message, PresenceEntry } from "../../gen/es/seqcast/v1/types_pb.js";
import { Subscription, type SubscriptionOptions } from "./subscription.js";
import { withToken, type TokenSource } from "./auth.js";
import { newClientMessageId, PublishQueue } from "./publish-queue.js";
import { StreamPublisher } from "./stream-publisher.js";
import { defaultBackoff, type BackoffPolicy, type RetryContext } from "./retry.js";
import { CausalContext, DEFAULT_CAUSAL_ROOMS } from "./causal-context.js";
import { CausalPlaces } from "./causal-gate.js";

/** The broker's bound on PublishRequest.dependencies (proto/seqcast/v1/pubsub.proto). */
const MAX_DEPENDENCIES = 16;

/**
 * What every SeqcastClient needs, whatever the runtime. The transport comes
 * from the runtime's entry: createSeqcastClient (src/client/node.ts,
 * connect-node: gRPC, Connect, gRPC-Web) or createWebSeqcastClient
 * (src/client/web.ts, connect-web over fetch).
 */
export interface SeqcastClientOptions {
  /** Carries every call (without the token: the client adds it). */
  transport: Transport;
  /**
   * The bearer token (a JWT, e.g. from `seqcast token --user alice`) sent
   * with every call, or a function that returns the current one; the broker
   * takes the caller's identity from it.
   */
  token: TokenSource;
  /** Publishes per room on the wire at once (default 32, 1024 over a PublishStream); order is kept regardless. */
  maxPublishesInFlight?: number;
  /**
   * How publish() reaches the broker: "stream" (one PublishStream; needs a
   * transport with bidirectional streaming, i.e. HTTP/2) or "unary" (a
   * Publish call each; default here — the runtime entries choose, see
   * createSeqcastClient).
   */
  publishVia?: "stream" | "unary";
  /** Attempts per publish before it fails (default 10); retries only on retryable errors. */
  maxPublishAttempts?: number;
  /** Backoff between publish retries. */
  publishBackoff?: BackoffPolicy;
  /**
   * Causal metadata: each publish depends on the last message this client
   * received or published in each of this many most recently active rooms
   * (default 8, at most 15; 0 = none). See causal-context.ts for why that is
   * transitively complete within the bound.
   */
  causalRooms?: number;
}

export interface PublishOptions {
  payload?: Uint8Array;
  attributes?: Record<string, string>;
  /** Identifies the message for deduplication of retries; a random one is used if unset. */
  clientMessageId?: string;
  /** The message this one answers: one more causal dependency (subscribers holding its room see it first). */
  replyTo?: { room: string; epoch: string; sequence: bigint };
}

export interface PublishResult {
  id: string;
  epoch: string;
  sequence: bigint;
  duplicate: boolean;
}

export interface HistoryOptions {
  after?: bigint;
  before?: bigint;
  limit?: number;
  direction?: "forward" | "backward";
  /** CEL filter: only matching messages are returned. */
  filter?: string;
}

export interface HistoryResult {
  messages: Message[];
  epoch: string;
  /** Newest sequence of the room. */
  sequence: bigint;
  firstSequence: bigint;
  hasMore: boolean;
}

export interface PresenceResult {
  entries: PresenceEntry[];
  userCount: number;
  sessionCount: number;
}

/**
 * The seqcast SDK: publish, query, and subscribe with the reorder buffer
 * that delivers every room in order, exactly once.
 */
export class SeqcastClient {
  /** What the retry policy needs to know of this client. */
  readonly retryContext: RetryContext;
  /** The generated client; every call carries the token. */
  readonly rpc: Client<typeof PubSubService>;
  private readonly queues = new Map<string, PublishQueue<PublishResult>>();
  private readonly options: SeqcastClientOptions;
  /** What this client had seen, for the causal dependencies of its publishes; subscriptions report deliveries here. */
  readonly causal: CausalContext;
  /** Rooms held and delivered by all of this client's subscriptions: their causal gates wait on each other's rooms. */
  readonly causalPlaces = new CausalPlaces();

  constructor(options: SeqcastClientOptions) {
    this.options = options;
    const causalRooms = options.causalRooms ?? DEFAULT_CAUSAL_ROOMS;
    if (!(causalRooms >= 0 && causalRooms < MAX_DEPENDENCIES)) throw new RangeError(`causalRooms: ${causalRooms}, 0-${MAX_DEPENDENCIES - 1} allowed`);
    this.causal = new CausalContext(causalRooms);
    this.retryContext = { tokenRefreshable: typeof options.token === "function" };
    this.rpc = createClient(PubSubService, withToken(options.transport, options.token));
    if (options.publishVia === "stream") this.streamPublisher = new StreamPublisher(this.rpc);
  }

  /** Set when publishes go over a PublishStream. */
  private readonly streamPublisher: StreamPublisher | undefined;

  /**
   * Publishes one message and resolves with its position once the broker
   * stored it. Retryable failures (dropped connection, UNAVAILABLE) are
   * retried with the same client message id, so the message is stored once;
   * messages of this client to one room keep their call order, even with
   * many in flight. Terminal errors (INVALID_ARGUMENT, …) reject at once.
   */
  publish(room: string, content: string, options: PublishOptions = {}): Promise<PublishResult> {
    const clientMessageId = options.clientMessageId ?? newClientMessageId();
    const dependencies = this.causal.dependenciesFor(room, options.replyTo);
    const request = { room, content, payload: options.payload, attributes: options.attributes, clientMessageId, dependencies };
    let queue = this.queues.get(room);
    if (!queue) {
      queue = new PublishQueue<PublishResult>({
        maxInFlight: this.options.maxPublishesInFlight ?? (this.streamPublisher ? 1024 : 32),
        maxAttempts: this.options.maxPublishAttempts ?? 10,
        backoff: this.options.publishBackoff ?? defaultBackoff,
        retry: this.retryContext,
      });
      this.queues.set(room, queue);
    }
    const result = queue.push(async () => {
      const response = this.streamPublisher ? await this.streamPublisher.send(request) : await this.rpc.publish(request);
      const published = {
        id: response.id,
        epoch: response.position?.epoch ?? "",
        sequence: response.position?.sequence ?? 0n,
        duplicate: response.duplicate,
      };
      this.causal.observe(room, published.epoch, published.sequence);
      return published;
    });
    // Idle rooms do not keep a queue around.
    const forget = () => {
      if (queue.pending === 0 && this.queues.get(room) === queue) this.queues.delete(room);
    };
    result.then(forget, forget);
    return result;
  }

  async history(room: string, options: HistoryOptions = {}): Promise<HistoryResult> {
    const response = await this.rpc.getHistory({
        room,
        afterSequence: options.after ?? 0n,
        beforeSequence: options.before ?? 0n,
        limit: options.limit ?? 0,
        direction: options.direction === "backward" ? HistoryDirection.BACKWARD : HistoryDirection.FORWARD,
        filter: options.filter,
      });
    return {
      messages: response.messages,
      epoch: response.position?.epoch ?? "",
      sequence: response.position?.sequence ?? 0n,
      firstSequence: response.firstSequence,
      hasMore: response.hasMore,
    };
  }

  async presence(room: string): Promise<PresenceResult> {
    const response = await this.rpc.getPresence({ room });
    return { entries: response.entries, userCount: response.userCount, sessionCount: response.sessionCount };
  }

  /**
   * Opens a session on the given rooms and keeps it alive: reconnects with
   * backoff and resumes every room from the last message delivered.
   */
  subscribe(rooms: string[], options: SubscriptionOptions = {}): Subscription {
    const subscription = new Subscription(this, rooms, options);
    subscription.start();
    return subscription;
  }
}
