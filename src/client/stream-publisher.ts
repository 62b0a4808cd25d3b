import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/es/google/rpc/error_details_pb.js";
import {
  PubSubService,
  type PublishError,
  type PublishRequestSchema,
  type PublishResponse,
  type PublishStreamRequest,
} from "../../gen/es/seqcast/v1/pubsub_pb.js";

type PublishInit = MessageInitShape<typeof PublishRequestSchema>;

interface Pending {
  resolve(response: PublishResponse): void;
  reject(error: ConnectError): void;
}

/** An open PublishStream: what was sent and still awaits its result, oldest first. */
interface OpenStream {
  send(request: Partial<PublishStreamRequest>): void;
  end(): void;
  pending: Pending[];
  /** Messages of this event-loop turn, sent as one stream message at its end. */
  batch: PublishInit[] | undefined;
  /** Set once the stream failed or ended: nothing more is sent on it. */
  failure: ConnectError | undefined;
}

/** A stream with nothing in flight is half-closed after this long. */
const IDLE_MS = 10_000;

/**
 * Publishes over one PublishStream per client (HTTP/2): every publish() of
 * the client goes into it, the publishes of one event-loop turn share one
 * stream message, and results come back in order, so each settles the
 * oldest pending publish. A failed stream fails everything in flight with a
 * retryable error; the caller (PublishQueue) resends with the same client
 * message ids, so nothing is stored twice and one publisher's order holds.
 */
export class StreamPublisher {
  private stream: OpenStream | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly rpc: Client<typeof PubSubService>) {}

  /** Resolves with the message's position, or rejects with its error (a ConnectError carrying the broker's reason). */
  send(request: PublishInit): Promise<PublishResponse> {
    const stream = (this.stream ??= this.open());
    clearTimeout(this.idleTimer);
    return new Promise<PublishResponse>((resolve, reject) => {
      stream.pending.push({ resolve, reject });
      if (!stream.batch) {
        stream.batch = [];
        queueMicrotask(() => {
          const messages = stream.batch!;
          stream.batch = undefined;
          // The stream failed meanwhile: its failure already rejected these publishes.
          if (!stream.failure) stream.send({ messages } as Partial<PublishStreamRequest>);
        });
      }
      stream.batch.push(request);
    });
  }

  private open(): OpenStream {
    const requests: Partial<PublishStreamRequest>[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    const input = {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          const next = requests.shift();
          if (next) yield next as PublishStreamRequest;
          else if (ended) return;
          else await new Promise<void>((resolve) => (wake = resolve));
        }
      },
    };
    const stream: OpenStream = {
      pending: [],
      batch: undefined,
      failure: undefined,
      send(request) {
        requests.push(request);
        wake?.();
      },
      end() {
        ended = true;
        wake?.();
      },
    };
    void (async () => {
      let failure: ConnectError;
      try {
        for await (const response of this.rpc.publishStream(input)) {
          for (const result of response.results) {
            const waiter = stream.pending.shift();
            if (!waiter) continue;
            if (result.result.case === "published") waiter.resolve(result.result.value);
            else if (result.result.case === "error") waiter.reject(errorOf(result.result.value));
            else waiter.reject(new ConnectError("the broker sent an empty result", Code.Internal));
          }
          if (stream.pending.length === 0) this.armIdle(stream);
        }
        failure = new ConnectError("the broker ended the publish stream", Code.Unavailable);
      } catch (error) {
        failure = ConnectError.from(error);
      }
      if (this.stream === stream) this.stream = undefined;
      stream.failure = failure;
      stream.end();
      for (const waiter of stream.pending.splice(0)) waiter.reject(failure);
    })();
    return stream;
  }

  private armIdle(stream: OpenStream): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.stream !== stream || stream.pending.length > 0) return;
      this.stream = undefined;
      stream.end();
    }, IDLE_MS);
    (this.idleTimer as { unref?: () => void }).unref?.();
  }
}

/** A per-message error as the ConnectError a unary Publish would have raised (reason and retry hint included). */
function errorOf(error: PublishError): ConnectError {
  const details = [{ desc: ErrorInfoSchema, value: { reason: error.reason, domain: "seqcast.v1", metadata: error.metadata } }];
  if (error.retryAfterMs > 0)
    details.push({
      desc: RetryInfoSchema,
      value: { retryDelay: { seconds: BigInt(Math.floor(error.retryAfterMs / 1000)), nanos: (error.retryAfterMs % 1000) * 1_000_000 } },
    } as never);
  return new ConnectError(error.message, error.code as Code, undefined, details);
}
