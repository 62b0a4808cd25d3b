/**
 * The Redis engine's Lua scripts (src/engine/redis.ts). Each runs atomically
 * in Redis, so a publish (dedupe check, next sequence, append, trim, fan-out)
 * is one step that no other node can interleave with, and one round trip.
 * Every key a script touches is passed in KEYS and carries the room's hash
 * tag (src/engine/redis-keys.ts), so the scripts also run on Redis Cluster.
 *
 * Numbers cross the boundary as decimal strings: Lua 5.1 numbers are doubles,
 * printed with string.format('%d') so a sequence never turns into "1e+15".
 */

/** KEYS of every script that may create a room: the room's meta, log, dedupe and dedupe times. */
export const ROOM_KEY_COUNT = 4;

const ROOM_HELPERS = `
local function fmt(n) return string.format('%d', n) end
local function seq_of(id) return tonumber(string.match(id, '^(%d+)')) end

-- The room's epoch and last sequence. A room without an epoch gets
-- \`candidate\` (fresh random epoch from the node) when \`create\` is true: a
-- new lineage at sequence 0, so whatever outlived an earlier one (keys left
-- after their meta was evicted or lost) is dropped with it. Every room is
-- created here and nowhere else.
local function room_epoch(create, candidate)
  local meta = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
  if meta[1] then return meta[1], tonumber(meta[2]) end
  if not create then return '', 0 end
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
  redis.call('HSET', KEYS[1], 'epoch', candidate, 'seq', 0)
  return candidate, 0
end

-- Drops what retention no longer keeps: all but the newest \`size\`
-- messages, and the oldest ones published before \`cutoff\` (nil = no age
-- limit). Age trimming stops at the first message young enough, so only a
-- prefix is ever dropped, even when nodes' clocks disagree a little.
local function trim(size, cutoff)
  redis.call('XTRIM', KEYS[2], 'MAXLEN', size)
  if cutoff == nil then return end
  local batch = 1 -- usually the oldest message is young enough: look at it alone
  while true do
    local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', batch)
    local drop = nil
    for i = 1, #head do
      if tonumber(head[i][2][2]) >= cutoff then break end
      drop = head[i][1]
    end
    if drop == nil then return end
    redis.call('XTRIM', KEYS[2], 'MINID', fmt(seq_of(drop) + 1))
    if drop ~= head[#head][1] then return end
    batch = 64
  end
end

-- Oldest retained sequence, 0 when nothing is retained.
local function first_retained()
  local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
  if #head == 0 then return 0 end
  return seq_of(head[1][1])
end
`;

export interface ScriptDefinition {
  numberOfKeys: number;
  lua: string;
}

export const SCRIPTS = {
  /**
   * Publish one message.
   * KEYS: meta, log, dedupe, dedupe times (RoomKeys).
   * ARGV: [1] channel, [2] candidate epoch (used if the room has none),
   *   [3] dedupe field "<sender>\n<clientMessageId>" ("" = no dedupe),
   *   [4] now (ms), [5] dedupe window (ms), [6] history size,
   *   [7] history TTL (ms, 0 = none), [8] message id, [9] message time (ms),
   *   [10] body (JSON, see redis-codec.ts).
   * Returns {"ok", epoch, sequence} or, for a retry within the dedupe window,
   * {"dup", epoch, sequence, id, time, body} of the original (body "" when
   * retention dropped it). Publishes
   * "m|<epoch>|<sequence>|<body>" on the room's channel, in sequence order.
   */
  seqcastPublish: {
    numberOfKeys: ROOM_KEY_COUNT,
    lua: `${ROOM_HELPERS}
local epoch, seq = room_epoch(true, ARGV[2])
local field = ARGV[3]
local now = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
if field ~= '' then
  -- Forget keys older than the window (bounded work per publish).
  local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. fmt(now - window), 'LIMIT', 0, 100)
  if #old > 0 then
    redis.call('HDEL', KEYS[3], unpack(old))
    redis.call('ZREM', KEYS[4], unpack(old))
  end
  local hit = redis.call('HGET', KEYS[3], field)
  if hit then
    local s, id, t = string.match(hit, '^(%d+)\\n([^\\n]*)\\n(%d+)$')
    if tonumber(t) >= now - window then
      -- The original's body, unless retention dropped it already.
      local stored = redis.call('XRANGE', KEYS[2], s, s)
      local body = ''
      if #stored == 1 then body = stored[1][2][4] end
      return {'dup', epoch, s, id, t, body}
    end
  end
end
seq = seq + 1
local sequence = fmt(seq)
redis.call('HSET', KEYS[1], 'seq', sequence)
redis.call('XADD', KEYS[2], sequence .. '-0', 't', ARGV[9], 'b', ARGV[10])
local ttl = tonumber(ARGV[7])
if ttl > 0 then
  trim(tonumber(ARGV[6]), now - ttl)
  -- An idle room's messages all expire together: let Redis free them.
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
else
  trim(tonumber(ARGV[6]), nil)
end
if field ~= '' then
  redis.call('HSET', KEYS[3], field, sequence .. '\\n' .. ARGV[8] .. '\\n' .. ARGV[9])
  redis.call('ZADD', KEYS[4], ARGV[9], field)
  redis.call('PEXPIRE', KEYS[3], window * 2)
  redis.call('PEXPIRE', KEYS[4], window * 2)
end
redis.call('PUBLISH', ARGV[1], 'm|' .. epoch .. '|' .. sequence .. '|' .. ARGV[10])
return {'ok', epoch, sequence}
`,
  },

  /**
   * The room's position.
   * KEYS: meta, log, dedupe, dedupe times. ARGV: [1] "1" to create the room
   * if it has no epoch, [2] candidate epoch.
   * Returns {epoch, sequence}; {"", "0"} for a room that does not exist.
   */
  seqcastPosition: {
    numberOfKeys: ROOM_KEY_COUNT,
    lua: `${ROOM_HELPERS}
local epoch, seq = room_epoch(ARGV[1] == '1', ARGV[2])
return {epoch, fmt(seq)}
`,
  },

  /**
   * A page of history, after applying retention.
   * KEYS: meta, log, dedupe, dedupe times.
   * ARGV: [1] "1" to create the room if it has no epoch, [2] candidate epoch,
   *   [3] after (exclusive, 0 = oldest), [4] before (exclusive, 0 = newest),
   *   [5] limit, [6] "f" forward or "b" backward, [7] now (ms),
   *   [8] history size, [9] history TTL (ms, 0 = none).
   * Returns {epoch, sequence, firstSequence, hasMore (0/1), id1, body1, …},
   * entries in the direction read (backward: newest first).
   */
  seqcastHistory: {
    numberOfKeys: ROOM_KEY_COUNT,
    lua: `${ROOM_HELPERS}
local epoch, seq = room_epoch(ARGV[1] == '1', ARGV[2])
if epoch == '' then return {'', '0', '0', 0} end
local ttl = tonumber(ARGV[9])
if ttl > 0 then trim(tonumber(ARGV[8]), tonumber(ARGV[7]) - ttl) else trim(tonumber(ARGV[8]), nil) end
local first = first_retained()
local result = {epoch, fmt(seq), fmt(first), 0}
if first == 0 then return result end
local lo = math.max(tonumber(ARGV[3]) + 1, first)
local before = tonumber(ARGV[4])
local hi = seq
if before > 0 and before - 1 < seq then hi = before - 1 end
if hi < lo then return result end
local limit = tonumber(ARGV[5])
local entries
if ARGV[6] == 'f' then
  entries = redis.call('XRANGE', KEYS[2], fmt(lo), fmt(hi), 'COUNT', limit + 1)
else
  entries = redis.call('XREVRANGE', KEYS[2], fmt(hi), fmt(lo), 'COUNT', limit + 1)
end
if #entries > limit then
  result[4] = 1
  entries[limit + 1] = nil
end
for i = 1, #entries do
  result[#result + 1] = entries[i][1]
  result[#result + 1] = entries[i][2][4]
end
return result
`,
  },

  /**
   * Clear a room: drop its history and idempotency keys, start a new epoch.
   * KEYS: meta, log, dedupe, dedupe times. ARGV: [1] channel, [2] new epoch.
   * Publishes "r|<epoch>" on the room's channel. A room that was never
   * written is left alone (nothing created, nothing published): returns "".
   */
  seqcastClear: {
    numberOfKeys: ROOM_KEY_COUNT,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return '' end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
redis.call('HSET', KEYS[1], 'epoch', ARGV[2], 'seq', 0)
redis.call('PUBLISH', ARGV[1], 'r|' .. ARGV[2])
return ARGV[2]
`,
  },

  /**
   * Add or replace a presence entry.
   * KEYS: presence, presence expiry. ARGV: [1] channel, [2] session id,
   *   [3] entry (JSON), [4] "join" or "update", [5] expires at (ms),
   *   [6] key TTL (ms; the keys of a room nobody refreshes vanish).
   * Publishes "p|<kind>|<entry>" on the room's channel.
   */
  seqcastPresenceSet: {
    numberOfKeys: 2,
    lua: `
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('PUBLISH', ARGV[1], 'p|' .. ARGV[4] .. '|' .. ARGV[3])
return 1
`,
  },

  /**
   * Remove a presence entry.
   * KEYS: presence, presence expiry. ARGV: [1] channel, [2] session id.
   * Returns 1 and publishes "p|leave|<entry>" if it was there, else 0.
   */
  seqcastPresenceRemove: {
    numberOfKeys: 2,
    lua: `
local entry = redis.call('HGET', KEYS[1], ARGV[2])
if not entry then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[1], 'p|leave|' .. entry)
return 1
`,
  },

  /**
   * Expire the entries no node refreshed in time (their node died or lost
   * Redis), publishing a leave for each; optionally list what remains.
   * KEYS: presence, presence expiry. ARGV: [1] channel, [2] now (ms),
   *   [3] "1" to return the remaining entries (JSON), else the count expired.
   * Several nodes may sweep the same room: each entry leaves exactly once.
   */
  seqcastPresenceExpire: {
    numberOfKeys: 2,
    lua: `
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2], 'LIMIT', 0, 1000)
for i = 1, #due do
  local entry = redis.call('HGET', KEYS[1], due[i])
  redis.call('HDEL', KEYS[1], due[i])
  redis.call('ZREM', KEYS[2], due[i])
  if entry then redis.call('PUBLISH', ARGV[1], 'p|leave|' .. entry) end
end
if ARGV[3] == '1' then return redis.call('HVALS', KEYS[1]) end
return #due
`,
  },

  /**
   * A node's heartbeat for its sessions in one room: push their expiry out;
   * an entry that expired meanwhile (the node was cut off from Redis for
   * longer than the TTL) is added again with a join, since the session is in
   * fact still there.
   * KEYS: presence, presence expiry. ARGV: [1] channel, [2] expires at (ms),
   *   [3] key TTL (ms), then pairs [session id, entry (JSON)].
   */
  seqcastPresenceTouch: {
    numberOfKeys: 2,
    lua: `
for i = 4, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    redis.call('PUBLISH', ARGV[1], 'p|join|' .. ARGV[i + 1])
  end
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`,
  },

  /**
   * Forget the room if it is idle (Engine.sweep): it retains no message (no
   * TTL: none at all; else every one older than the cutoff), holds no
   * idempotency key within the window, no presence entry and no durable
   * subscriber's ack. Deletes every key of the room; its next publish starts a
   * new lineage (room_epoch). Whether a node watches the room is checked by
   * the caller (PUBSUB NUMSUB), which scripts cannot do.
   * KEYS: meta, log, dedupe, dedupe times, presence, presence expiry, acks.
   * ARGV: [1] TTL cutoff (ms; "" = no TTL), [2] oldest live dedupe time (ms).
   * Returns 1 when forgotten, else 0.
   */
  seqcastSweep: {
    numberOfKeys: 7,
    lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HLEN', KEYS[5]) > 0 or redis.call('HLEN', KEYS[7]) > 0 then return 0 end
if redis.call('ZCOUNT', KEYS[4], ARGV[2], '+inf') > 0 then return 0 end
if redis.call('XLEN', KEYS[2]) > 0 then
  if ARGV[1] == '' then return 0 end
  local cutoff = tonumber(ARGV[1])
  -- At most the history size: every retained message must be older than the cutoff.
  local all = redis.call('XRANGE', KEYS[2], '-', '+')
  for i = 1, #all do
    if tonumber(all[i][2][2]) >= cutoff then return 0 end
  end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
return 1
`,
  },

  /**
   * Record a durable subscriber's ack: within one epoch it only moves
   * forward; an ack of another epoch replaces it (the room was reset).
   * KEYS: acks. ARGV: [1] subscriber, [2] epoch, [3] sequence.
   */
  seqcastAck: {
    numberOfKeys: 1,
    lua: `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local s, e = string.match(current, '^(%d+):(.*)$')
  if e == ARGV[2] and tonumber(s) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3] .. ':' .. ARGV[2])
return 1
`,
  },
} satisfies Record<string, ScriptDefinition>;

export type ScriptName = keyof typeof SCRIPTS;
