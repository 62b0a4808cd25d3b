import { SeqcastClient, type SeqcastClientOptions } from "./client.js";
import { createTransport, type Protocol } from "./transport.js";

/** A client in Node: any of the three protocols, over HTTP/2 or HTTP/1.1. */
export interface NodeClientOptions extends Omit<SeqcastClientOptions, "transport"> {
  /** Broker URL, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  protocol?: Protocol;
  httpVersion?: "1.1" | "2";
  /** Use this transport instead of building one from baseUrl/protocol. */
  transport?: SeqcastClientOptions["transport"];
}

/** The SDK's Node entry: a SeqcastClient on a connect-node transport. */
export function createSeqcastClient(options: NodeClientOptions): SeqcastClient {
  const { baseUrl, protocol, httpVersion, ...rest } = options;
  return new SeqcastClient({ ...rest, transport: options.transport ?? createTransport({ baseUrl, protocol, httpVersion }) });
}
