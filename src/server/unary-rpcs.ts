import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { Broker } from "../broker/broker.js";
import { BrokerError } from "../broker/errors.js";
import type { Identity } from "../broker/identity.js";
import {
  AckRequestSchema,
  AckResponseSchema,
  ClearHistoryRequestSchema,
  ClearHistoryResponseSchema,
  GetPresenceRequestSchema,
  GetPresenceResponseSchema,
  JoinRequestSchema,
  JoinResponseSchema,
  LeaveRequestSchema,
  LeaveResponseSchema,
  SetPresenceRequestSchema,
  SetPresenceResponseSchema,
} from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { PresenceState } from "../../gen/es/seqcast/v1/types_pb.js";
import { fromPbPosition, toPbPosition, toPbPresenceEntry } from "./convert.js";
import { toRoomRequests } from "./room-requests.js";

/**
 * PubSubService's small unary RPCs, once for both of the broker's paths:
 * connect-node (pubsub-service.ts: Connect, gRPC-Web, JSON, HTTP/1.1) and the
 * lean gRPC path (grpc/fast-path.ts: binary gRPC on HTTP/2, where a call
 * costs the broker a third of what connect-node's pipeline does). Each takes
 * the authenticated caller and the decoded request and returns the response
 * message; errors are thrown as BrokerError and mapped by the path.
 */
export interface UnaryRpc<I extends DescMessage, O extends DescMessage> {
  /** The RPC's name in the service (its path: /seqcast.v1.PubSubService/<name>). */
  name: string;
  input: I;
  output: O;
  run(broker: Broker, caller: Identity, request: MessageShape<I>): Promise<MessageShape<O>>;
}

const rpc = <I extends DescMessage, O extends DescMessage>(
  name: string,
  input: I,
  output: O,
  run: (broker: Broker, caller: Identity, request: MessageShape<I>) => Promise<MessageShape<O>>,
): UnaryRpc<I, O> => ({ name, input, output, run });

export const UNARY_RPCS = {
  join: rpc("Join", JoinRequestSchema, JoinResponseSchema, async (broker, caller, request) => {
    await broker.join(broker.getSession(request.sessionId, caller.user), toRoomRequests(request.rooms));
    return create(JoinResponseSchema);
  }),
  leave: rpc("Leave", LeaveRequestSchema, LeaveResponseSchema, async (broker, caller, request) => {
    await broker.leave(broker.getSession(request.sessionId, caller.user), request.rooms);
    return create(LeaveResponseSchema);
  }),
  ack: rpc("Ack", AckRequestSchema, AckResponseSchema, async (broker, caller, request) => {
    const session = broker.getSession(request.sessionId, caller.user);
    await broker.ack(
      session,
      request.acks.map((a) => ({ room: a.room, position: fromPbPosition(a.position) })),
    );
    return create(AckResponseSchema);
  }),
  clearHistory: rpc("ClearHistory", ClearHistoryRequestSchema, ClearHistoryResponseSchema, async (broker, caller, request) => {
    const position = await broker.clearHistory(caller, request.room);
    return create(ClearHistoryResponseSchema, { position: toPbPosition(position) });
  }),
  setPresence: rpc("SetPresence", SetPresenceRequestSchema, SetPresenceResponseSchema, async (broker, caller, request) => {
    const session = broker.getSession(request.sessionId, caller.user);
    const state = request.state === PresenceState.ONLINE ? "online" : request.state === PresenceState.AWAY ? "away" : undefined;
    if (!state)
      throw new BrokerError("invalid_argument", "state: must be PRESENCE_STATE_ONLINE or PRESENCE_STATE_AWAY", { metadata: { field: "state" } });
    await broker.setPresence(session, state);
    return create(SetPresenceResponseSchema);
  }),
  getPresence: rpc("GetPresence", GetPresenceRequestSchema, GetPresenceResponseSchema, async (broker, caller, request) => {
    const snapshot = await broker.presence(caller, request.room);
    return create(GetPresenceResponseSchema, {
      entries: snapshot.entries.map((e) => toPbPresenceEntry(e)),
      userCount: snapshot.userCount,
      sessionCount: snapshot.sessionCount,
    });
  }),
};
