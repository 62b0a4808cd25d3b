import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import type { ConnectError } from "@connectrpc/connect";
import { StatusSchema } from "../../../gen/es/google/rpc/status_pb.js";
import { toConnectError } from "../errors.js";

/**
 * The trailers of a gRPC response (grpc/PROTOCOL-HTTP2.md): grpc-status,
 * grpc-message (percent-encoded), and the google.rpc.Status with the
 * error's details (ErrorInfo, RetryInfo) in grpc-status-details-bin, as
 * every gRPC library reads them. Built from the same ConnectError mapping
 * the Connect handlers use, so codes and reasons agree across protocols.
 */
export function statusTrailers(error: unknown): Record<string, string> {
  if (error === undefined) return { "grpc-status": "0" };
  const e = toConnectError(error);
  const trailers: Record<string, string> = { "grpc-status": String(e.code), "grpc-message": percentEncode(e.rawMessage) };
  const details = detailsOf(e);
  if (details.length > 0)
    trailers["grpc-status-details-bin"] = Buffer.from(
      toBinary(StatusSchema, create(StatusSchema, { code: e.code, message: e.rawMessage, details })),
    ).toString("base64");
  return trailers;
}

function detailsOf(error: ConnectError) {
  const out = [];
  for (const detail of error.details) {
    if ("desc" in detail) out.push(anyPack(detail.desc, create(detail.desc, detail.value)));
    else out.push({ $typeName: "google.protobuf.Any" as const, typeUrl: `type.googleapis.com/${detail.type}`, value: detail.value });
  }
  return out;
}

/** grpc-message: printable ASCII except '%' as is, every other byte of the UTF-8 as %XX. */
export function percentEncode(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    if (byte >= 0x20 && byte <= 0x7e && byte !== 0x25) out += String.fromCharCode(byte);
    else out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}
