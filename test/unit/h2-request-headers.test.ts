import assert from "node:assert/strict";
import { describe, it } from "vitest";
import { HpackDecoder, literalBlock } from "../../src/server/h2/hpack.js";
import { requestHeaders } from "../../src/server/h2/request-headers.js";
// @ts-expect-error hpack.js has no type declarations
import hpack from "hpack.js";

const REQUEST: Array<[string, string]> = [
  [":method", "POST"],
  [":scheme", "http"],
  [":path", "/seqcast.v1.PubSubService/Publish"],
  [":authority", "localhost"],
];

const decode = (fields: Array<[string, string]>, trailers = false, maxBytes = 65_536) =>
  requestHeaders(new HpackDecoder(), literalBlock(fields), maxBytes, trailers);

describe("request headers of the broker's HTTP/2 connection", () => {
  it("joins repeated fields as Node does: cookie with '; ', set-cookie as a list, single-valued fields keep the first, others ', '", () => {
    const decoded = decode([
      ...REQUEST,
      ["cookie", "a=1"],
      ["cookie", "b=2"],
      ["set-cookie", "x"],
      ["set-cookie", "y"],
      ["authorization", "Bearer first"],
      ["authorization", "Bearer second"],
      ["accept", "text/html"],
      ["accept", "application/json"],
    ]);
    assert.ok(typeof decoded !== "string");
    assert.equal(decoded.headers.cookie, "a=1; b=2");
    assert.deepEqual(decoded.headers["set-cookie"], ["x", "y"]);
    assert.equal(decoded.headers.authorization, "Bearer first");
    assert.equal(decoded.headers.accept, "text/html, application/json");
    assert.deepEqual(decoded.raw.slice(0, 4), [":method", "POST", ":scheme", "http"]);
  });

  it("keeps a field named __proto__ or constructor as a field: no object's prototype changes", () => {
    const decoded = decode([...REQUEST, ["__proto__", "polluted"], ["constructor", "c"]]);
    assert.ok(typeof decoded !== "string");
    assert.deepEqual(Object.keys(decoded.headers).slice(-2), ["__proto__", "constructor"]);
    assert.equal(decoded.headers["__proto__"], "polluted");
    assert.equal(Object.getPrototypeOf(Object.getPrototypeOf(decoded.headers)), null);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it("calls malformed what RFC 9113 §8 forbids", () => {
    const cases: Array<[string, Array<[string, string]>]> = [
      ["an uppercase name", [...REQUEST, ["X-Upper", "1"]]],
      ["a pseudo-header after a regular field", [[":method", "POST"], ["x", "1"], [":scheme", "http"], [":path", "/"]]],
      ["an unknown pseudo-header", [...REQUEST, [":status", "200"]]],
      ["a repeated pseudo-header", [...REQUEST, [":path", "/again"]]],
      ["a connection-specific field", [...REQUEST, ["transfer-encoding", "chunked"]]],
      ["te other than trailers", [...REQUEST, ["te", "gzip"]]],
      ["no :path", REQUEST.filter(([name]) => name !== ":path")],
      ["no :method", REQUEST.filter(([name]) => name !== ":method")],
    ];
    for (const [what, fields] of cases) assert.equal(decode(fields), "malformed", what);
    assert.equal(decode([["grpc-status", "0"], [":path", "/"]], true), "malformed", "a pseudo-header in trailers");
    assert.ok(typeof decode([["x-checksum", "abc"]], true) !== "string", "trailers without pseudo-headers");
  });

  it("refuses a list over the limit, counted as SETTINGS_MAX_HEADER_LIST_SIZE counts (name, value, 32 per field)", () => {
    const fields: Array<[string, string]> = [...REQUEST, ["x-big", "y".repeat(1000)]];
    const size = fields.reduce((sum, [name, value]) => sum + name.length + value.length + 32, 0);
    assert.ok(typeof decode(fields, false, size) !== "string", "exactly at the limit");
    assert.equal(decode(fields, false, size - 1), "too large");
  });

  it("says compression when the block cannot be decoded", () => {
    assert.equal(requestHeaders(new HpackDecoder(), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 65_536), "compression");
    assert.equal(requestHeaders(new HpackDecoder(), Buffer.from([0xbe]), 65_536), "compression", "an index beyond both tables");
  });

  it("decodes never-indexed Huffman strings that repeat, change in place or move, block after block, as a fresh decoder would", () => {
    // Blocks as nghttp2 sends them: the path and the token as Huffman literals never indexed, in the same order each time.
    const compressor = hpack.compressor.create({ table: { size: 4096 } });
    const block = (fields: Array<[string, string]>) => {
      compressor.write(fields.map(([name, value]) => ({ name, value, huffman: true, neverIndex: true })));
      return compressor.read() as Buffer;
    };
    const token = (tail: string) => `Bearer ${"a".repeat(150)}.${tail}`;
    const requests: Array<Array<[string, string]>> = [
      [[":path", "/seqcast.v1.PubSubService/Publish"], ["authorization", token("one")]],
      [[":path", "/seqcast.v1.PubSubService/Publish"], ["authorization", token("one")]],
      [[":path", "/seqcast.v1.PubSubService/Publish"], ["authorization", token("two")]], // same length, other bytes
      [[":path", "/seqcast.v1.PubSubService/Publish"], ["authorization", token("three")]], // another length
      [["authorization", token("one")], [":path", "/seqcast.v1.PubSubService/GetHistory"]], // the order changes
      [[":path", "/seqcast.v1.PubSubService/Publish"], ["authorization", token("one")]],
      // Strings too long to keep are decoded every time.
      [[":path", "/seqcast.v1.PubSubService/Publish"], ["authorization", `Bearer ${"b".repeat(4000)}`]],
      [[":path", "/seqcast.v1.PubSubService/Publish"], ["authorization", `Bearer ${"c".repeat(4000)}`]],
    ];
    const decoder = new HpackDecoder();
    for (const [i, fields] of requests.entries()) {
      const bytes = block(fields);
      const seen: Array<[string, string]> = [];
      decoder.decode(bytes, (name, value) => seen.push([name, value]));
      assert.deepEqual(seen, fields, `block ${i}`);
    }
  });
});
