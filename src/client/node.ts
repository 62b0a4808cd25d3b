import { SeqcastClient, type SeqcastClientOptions } from "./client.js";
import { createFailoverTransport } from "./failover.js";
import { createTransport, type Protocol, type TransportOptions } from "./transport.js";

/** A client in Node: any of the three protocols, over HTTP/2 or HTTP/1.1, to one node or several. */
export interface NodeClientOptions extends Omit<SeqcastClientOptions, "transport" | "publishVia"> {
  /** Broker URL, e.g. http://127.0.0.1:8080 (or baseUrls). */
  baseUrl?: string;
  /**
   * Several nodes of one deployment (brokers on one Redis), in order of
   * preference: calls go to one node and move to the next when it fails
   * (connection lost, shutting down, its storage unreachable). Publishes are
   * retried and subscriptions resume there with every guarantee unchanged.
   */
  baseUrls?: string[];
  protocol?: Protocol;
  httpVersion?: "1.1" | "2";
  /** For https:// URLs: the PEM certificate(s) to trust for the broker instead of Node's CA store (see TransportOptions.ca). */
  ca?: TransportOptions["ca"];
  /** Use this transport instead of building one from baseUrl/protocol. */
  transport?: SeqcastClientOptions["transport"];
  /**
   * How publish() reaches the broker: "auto" (default: one PublishStream for
   * gRPC and for Connect over HTTP/2, a unary Publish each otherwise),
   * "stream" or "unary".
   */
  publishVia?: "auto" | "stream" | "unary";
}

/** The SDK's Node entry: a SeqcastClient on connect-node transports. */
export function createSeqcastClient(options: NodeClientOptions): SeqcastClient {
  const { baseUrl, baseUrls, protocol = "grpc", httpVersion = "2", ca, transport, publishVia = "auto", ...rest } = options;
  const urls = baseUrls ?? (baseUrl !== undefined ? [baseUrl] : []);
  if (!transport && urls.length === 0) throw new Error("createSeqcastClient: set baseUrl (or baseUrls, or transport)");
  const transports = urls.map((url) => createTransport({ baseUrl: url, protocol, httpVersion, ca }));
  const http2 = protocol === "grpc" || (protocol === "connect" && httpVersion === "2");
  return new SeqcastClient({
    ...rest,
    transport: transport ?? (transports.length === 1 ? transports[0]! : createFailoverTransport(transports)),
    publishVia: publishVia === "auto" ? (!transport && http2 ? "stream" : "unary") : publishVia,
  });
}
