-- Helpers shared by the data-queue scripts, spliced in by the loader
-- (--@include lib/data_common.lua); not a script of its own. Needs
-- lib/common.lua (now_ms, wake) included before it.
--
-- Every data queue script that acts on expired leases takes these 8 KEYS:
-- KEYS[1] ready    LIST  ids readable now, FIFO (may hold ids already
--                        finished: a read skips ids without an item)
-- KEYS[2] msg      HASH  id -> item JSON (opaque: never decoded here)
-- KEYS[3] delayed  ZSET  id -> time it becomes readable (ms)
-- KEYS[4] leases   ZSET  id -> lease deadline (ms)
-- KEYS[5] meta     HASH  id -> item state, see parse_state
-- KEYS[6] wake     LIST  at most one token: wakes a blocked reader
-- KEYS[7] dead     ZSET  id -> time it was dead-lettered (ms)
-- KEYS[8] deadmsg  HASH  id -> dead-letter record JSON

-- Item state, beside the item so the item is never re-encoded:
-- "<reads> <max> <dead> <put_ms>". reads counts leased reads and doubles as
-- the lease token (each lease raises it, so an old token never matches
-- again); max is how many leased reads the item allows, 0 until pinned (by
-- the put, or else by its first leased read); dead is 1 to dead-letter and
-- 0 to drop an item out of reads, '?' until pinned the same way.
local function parse_state(raw)
  if not raw then return nil end
  local reads, max, dead, put = string.match(raw, '^(%d+) (%d+) ([01?]) (%d+)$')
  if not reads then return nil end
  return {reads = tonumber(reads), max = tonumber(max), dead = dead, put = tonumber(put)}
end

local function format_state(s)
  return string.format('%d %d %s %d', s.reads, s.max, s.dead, s.put)
end

-- unpack() is bounded by Lua's C stack (about 8000 values), so long argument
-- lists go to Redis in slices. SLICE is even: pair lists stay whole.
local SLICE = 1000
local function sliced(cmd, key, list, first, last)
  first, last = first or 1, last or #list
  local total = 0
  for i = first, last, SLICE do
    total = total + redis.call(cmd, key, unpack(list, i, math.min(i + SLICE - 1, last)))
  end
  return total
end

-- A lease is honoured only before its deadline, by Redis time.
local function lease_live(k_leases, id, now)
  local deadline = redis.call('ZSCORE', k_leases, id)
  return deadline and tonumber(deadline) > now
end

local function bury(id, s, now, reason)
  local item = redis.call('HGET', KEYS[2], id)
  if item then
    -- The item travels as a string inside the record, byte for byte.
    local record = {item = item, inserted_ms = s.put, died_ms = now, reads = s.reads, reason = reason}
    redis.call('HSET', KEYS[8], id, cjson.encode(record))
    redis.call('ZADD', KEYS[7], now, id)
  end
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[5], id)
end

-- Due delayed items join the back of ready; items whose lease expired go to
-- the front while they have reads left (a retry should not wait behind the
-- backlog), else to the dead letters or nowhere. Bounded per call by limit.
local function upkeep(now, limit)
  local moved = false
  local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)
  if #due > 0 then
    sliced('ZREM', KEYS[3], due)
    sliced('RPUSH', KEYS[1], due)
    moved = true
  end
  local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, limit)
  if #expired > 0 then
    sliced('ZREM', KEYS[4], expired)
    local states = redis.call('HMGET', KEYS[5], unpack(expired))
    for i, id in ipairs(expired) do
      local s = parse_state(states[i])
      if s and s.reads < s.max then
        redis.call('LPUSH', KEYS[1], id)
        moved = true
      elseif s and s.dead == '1' then
        bury(id, s, now, 'lease expired on the last attempt')
      else
        redis.call('HDEL', KEYS[2], id)
        redis.call('HDEL', KEYS[5], id)
      end
    end
  end
  if moved then wake(KEYS[6]) end
end

-- The earliest pending due time or lease deadline (-1: none): how long a
-- blocked reader may sleep before something becomes readable without a put.
local function next_change()
  local out = -1
  for _, key in ipairs({KEYS[3], KEYS[4]}) do
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    if first[2] and (out < 0 or tonumber(first[2]) < out) then out = tonumber(first[2]) end
  end
  return out
end
