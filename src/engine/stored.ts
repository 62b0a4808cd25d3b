import type { MessageDraft, StoredMessage } from "./engine.js";

/**
 * The message an engine stores for `draft`: the id, epoch and sequence it
 * assigned, and the draft's fields as published. `room`: the engine's own
 * string for the draft's room name, if it keeps one.
 */
export function storedMessage(draft: MessageDraft, id: string, epoch: string, sequence: bigint, room = draft.room): StoredMessage {
  return {
    id,
    room,
    epoch,
    sequence,
    sender: draft.sender,
    content: draft.content,
    payload: draft.payload,
    attributes: draft.attributes,
    timeMs: draft.timeMs,
    clientMessageId: draft.clientMessageId,
    dependencies: draft.dependencies,
  };
}

/**
 * The answer to a retry whose original retention already dropped: what its
 * idempotency key remembers (id, position, time), without a body.
 */
export function rememberedMessage(draft: MessageDraft, id: string, epoch: string, sequence: bigint, timeMs: number): StoredMessage {
  return storedMessage({ ...draft, content: "", payload: new Uint8Array(0), attributes: {}, timeMs, dependencies: undefined }, id, epoch, sequence);
}
