import type { Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";

export type Protocol = "grpc" | "connect" | "grpc-web";

export interface TransportOptions {
  baseUrl: string;
  protocol?: Protocol;
  /** "2" (default; h2c for http://, TLS with ALPN for https://) or "1.1" (Connect and gRPC-Web only). */
  httpVersion?: "1.1" | "2";
  /**
   * For https:// URLs: the PEM certificate(s) to trust for the broker, in
   * place of Node's CA store (a private CA, a self-signed certificate).
   * Unset: Node's store, plus NODE_EXTRA_CA_CERTS.
   */
  ca?: string | Buffer | Array<string | Buffer>;
}

/** A Node transport for the protocol; gRPC always runs on HTTP/2. */
export function createTransport(options: TransportOptions): Transport {
  const { baseUrl, protocol = "grpc", ca } = options;
  const httpVersion = options.httpVersion ?? "2";
  const nodeOptions = ca === undefined ? undefined : { ca };
  switch (protocol) {
    case "grpc":
      return createGrpcTransport({ baseUrl, nodeOptions });
    case "connect":
      return createConnectTransport({ baseUrl, httpVersion, nodeOptions });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion, nodeOptions });
  }
}
