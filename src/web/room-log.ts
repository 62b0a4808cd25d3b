import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Message } from "../../gen/es/seqcast/v1/types_pb.js";
import { el } from "./dom.js";
import { shortTime } from "./format.js";

// One room's (or the private messages') lines as the page shows them:
// messages in the stream's order, the user's own lines while the broker has
// not acknowledged them, and notes (resets, joins, errors).

export type LogEntry =
  | {
      kind: "message";
      message: Message;
      /** Shown from the backlog: before this page joined. */
      earlier?: boolean;
      /** A private message: received (in) or sent by this user (out, to `peer`). */
      direct?: { way: "in" | "out"; peer: string };
    }
  | { kind: "pending"; id: string; text: string; failed?: string; to?: string }
  | { kind: "note"; text: string; warn?: boolean };

/** Lines kept per room; older ones scroll away for good. */
const MAX_ENTRIES = 1000;

export class RoomLog {
  readonly entries: LogEntry[] = [];
  /** Messages that arrived while another room was shown. */
  unread = 0;

  add(entry: LogEntry): void {
    this.entries.push(entry);
    if (this.entries.length > MAX_ENTRIES) this.entries.splice(0, this.entries.length - MAX_ENTRIES);
  }

  /** Removes the pending line of a publish (its message arrived, or it was sent); true if there was one. */
  settle(id: string): boolean {
    const at = this.entries.findIndex((e) => e.kind === "pending" && e.id === id);
    if (at < 0) return false;
    this.entries.splice(at, 1);
    return true;
  }

  /** Marks a pending line as not sent, saying why. */
  fail(id: string, reason: string): LogEntry | undefined {
    const entry = this.entries.find((e) => e.kind === "pending" && e.id === id);
    if (entry?.kind === "pending") entry.failed = reason;
    return entry;
  }
}

/** One line of the log as a list item. */
export function renderEntry(entry: LogEntry, me: string): HTMLLIElement {
  if (entry.kind === "note") return el("li", { className: entry.warn ? "note warn" : "note", text: entry.text });
  if (entry.kind === "pending") {
    const state = entry.failed ? `not sent: ${entry.failed}` : "sending…";
    return el("li", { className: entry.failed ? "failed" : "pending", data: { id: entry.id } }, [
      el("span", { className: "time", text: "" }),
      el("span", { className: "seq", text: "…", title: "not acknowledged by the broker yet" }),
      el("span", { className: "body" }, [
        el("span", { className: "sender", text: entry.to ? `${me} → ${entry.to}` : me }),
        el("span", { className: "text", text: `${entry.text} ` }),
        el("em", { className: "state", text: `(${state})` }),
      ]),
    ]);
  }
  const { message, direct } = entry;
  const time = message.time ? timestampDate(message.time) : new Date();
  const sender = direct?.way === "out" ? `${me} → ${direct.peer}` : message.sender;
  const body = message.content !== "" || message.payload.length === 0 ? message.content : `<${message.payload.length} bytes of payload>`;
  return el(
    "li",
    {
      className: [entry.earlier ? "earlier" : "", message.sender === me ? "own" : ""].filter(Boolean).join(" "),
      data: { seq: String(message.sequence), sender: message.sender },
    },
    [
      el("time", { className: "time", text: shortTime(time), title: time.toLocaleString() }),
      el("span", { className: "seq", text: direct ? "dm" : `#${message.sequence}`, title: direct ? "private message" : "sequence in this room" }),
      el("span", { className: "body" }, [
        el("span", { className: "sender", text: sender }),
        message.content === "" ? el("em", { className: "text", text: body }) : el("span", { className: "text", text: body }),
      ]),
    ],
  );
}
