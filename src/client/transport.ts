import type { Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";

export type Protocol = "grpc" | "connect" | "grpc-web";

export interface TransportOptions {
  baseUrl: string;
  protocol?: Protocol;
  /** "2" (h2c, default) or "1.1" (Connect and gRPC-Web only). */
  httpVersion?: "1.1" | "2";
}

/** A Node transport for the protocol; gRPC always runs on HTTP/2. */
export function createTransport(options: TransportOptions): Transport {
  const { baseUrl, protocol = "grpc" } = options;
  const httpVersion = options.httpVersion ?? "2";
  switch (protocol) {
    case "grpc":
      return createGrpcTransport({ baseUrl });
    case "connect":
      return createConnectTransport({ baseUrl, httpVersion });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion });
  }
}
