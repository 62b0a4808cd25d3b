import type { HistoryInput, RoomRequest } from "../broker/broker.js";
import { HistoryDirection, type GetHistoryRequest, type RoomSubscription } from "../../gen/es/seqcast/v1/pubsub_pb.js";
import { fromPbPosition } from "./convert.js";

/** The rooms of a Subscribe or Join request, as the broker takes them (both of the broker's paths). */
export const toRoomRequests = (rooms: RoomSubscription[]): RoomRequest[] =>
  rooms.map((r) => ({ room: r.room, since: fromPbPosition(r.since), filter: r.filter || undefined }));

/** What the broker reads for a GetHistory request (connect-node's and the gRPC fast path's). */
export function historyInput(request: GetHistoryRequest): HistoryInput {
  return {
    room: request.room,
    after: request.afterSequence,
    before: request.beforeSequence,
    limit: request.limit,
    direction: request.direction === HistoryDirection.BACKWARD ? "backward" : "forward",
    filter: request.filter || undefined,
  };
}
