import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { HistoryDirection, PubSubService } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import type { Message, PresenceEntry } from "../../gen/es/seqcast/v1/types_pb.js";
import { Subscription, type SubscriptionOptions } from "./subscription.js";
import { createTransport, type Protocol } from "./transport.js";

export interface SeqcastClientOptions {
  /** Broker URL, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  /** The identity sent with every call. */
  user: string;
  protocol?: Protocol;
  httpVersion?: "1.1" | "2";
  /** Use this transport instead of building one from baseUrl/protocol. */
  transport?: Transport;
}

export interface PublishOptions {
  payload?: Uint8Array;
  attributes?: Record<string, string>;
  clientMessageId?: string;
  signal?: AbortSignal;
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
  readonly rpc: Client<typeof PubSubService>;
  readonly user: string;
  private readonly headers: Record<string, string>;

  constructor(options: SeqcastClientOptions) {
    this.user = options.user;
    this.headers = { "seqcast-user": options.user };
    const transport =
      options.transport ??
      createTransport({ baseUrl: options.baseUrl, protocol: options.protocol, httpVersion: options.httpVersion });
    this.rpc = createClient(PubSubService, transport);
  }

  /** Header set on every call (identity). */
  get callHeaders(): Record<string, string> {
    return this.headers;
  }

  async publish(room: string, content: string, options: PublishOptions = {}): Promise<PublishResult> {
    const response = await this.rpc.publish(
      {
        room,
        content,
        payload: options.payload,
        attributes: options.attributes,
        clientMessageId: options.clientMessageId,
      },
      { headers: this.headers, signal: options.signal },
    );
    return {
      id: response.id,
      epoch: response.position?.epoch ?? "",
      sequence: response.position?.sequence ?? 0n,
      duplicate: response.duplicate,
    };
  }

  async history(room: string, options: HistoryOptions = {}): Promise<HistoryResult> {
    const response = await this.rpc.getHistory(
      {
        room,
        afterSequence: options.after ?? 0n,
        beforeSequence: options.before ?? 0n,
        limit: options.limit ?? 0,
        direction: options.direction === "backward" ? HistoryDirection.BACKWARD : HistoryDirection.FORWARD,
      },
      { headers: this.headers },
    );
    return {
      messages: response.messages,
      epoch: response.position?.epoch ?? "",
      sequence: response.position?.sequence ?? 0n,
      firstSequence: response.firstSequence,
      hasMore: response.hasMore,
    };
  }

  async presence(room: string): Promise<PresenceResult> {
    const response = await this.rpc.getPresence({ room }, { headers: this.headers });
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

export function createSeqcastClient(options: SeqcastClientOptions): SeqcastClient {
  return new SeqcastClient(options);
}
