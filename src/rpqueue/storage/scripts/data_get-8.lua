-- Read up to n items of a data queue, after moving due delayed items to
-- ready and acting on expired leases (lib/data_common.lua: upkeep).
-- KEYS[1] ready    LIST  ids readable now
-- KEYS[2] msg      HASH  id -> item JSON
-- KEYS[3] delayed  ZSET  id -> time it becomes readable (ms)
-- KEYS[4] leases   ZSET  id -> lease deadline (ms)
-- KEYS[5] meta     HASH  id -> item state (lib/data_common.lua)
-- KEYS[6] wake     LIST  wake token for blocked readers
-- KEYS[7] dead     ZSET  id -> time it was dead-lettered (ms)
-- KEYS[8] deadmsg  HASH  id -> dead-letter record JSON
-- ARGV[1] mode: 'take' removes what it reads (0/1), 'lease' hides it until
--         ARGV[3] ms from now (1+), 'peek' changes nothing it reads
-- ARGV[2] n, most items to read (1..1000)
-- ARGV[3] lease length in ms (mode 'lease')
-- ARGV[4] leased reads allowed, pinned on items that left it open
-- ARGV[5] dead-letter flag '1'/'0', pinned on items that left it open
-- ARGV[6] most delayed items / expired leases to handle in this call
-- Returns {now_ms, next_ms, id, item, token, id, item, token, ...}: token is
-- the lease token for 'lease' reads, '' otherwise; next_ms as next_change.
--@include lib/common.lua
--@include lib/data_common.lua

local mode, n, lease_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
upkeep(now, tonumber(ARGV[6]))

local out = {now, 0}
if mode == 'peek' then
  local start, found = 0, 0
  while found < n do
    local ids = redis.call('LRANGE', KEYS[1], start, start + n - found - 1)
    if #ids == 0 then break end
    local items = redis.call('HMGET', KEYS[2], unpack(ids))
    for i, id in ipairs(ids) do
      if items[i] then
        local at = #out
        out[at + 1] = id
        out[at + 2] = items[i]
        out[at + 3] = ''
        found = found + 1
      end
    end
    start = start + #ids
  end
else
  local ids, items = {}, {}
  while #ids < n do
    local popped = redis.call('LPOP', KEYS[1], n - #ids)
    if not popped then break end
    local found = redis.call('HMGET', KEYS[2], unpack(popped))
    for i, id in ipairs(popped) do
      -- An id without an item was finished while it waited: skip it.
      if found[i] then
        ids[#ids + 1] = id
        items[#items + 1] = found[i]
      end
    end
  end
  if #ids > 0 then
    local tokens = {}
    if mode == 'take' then
      sliced('HDEL', KEYS[2], ids)
      sliced('HDEL', KEYS[5], ids)
    else
      local states = redis.call('HMGET', KEYS[5], unpack(ids))
      local updates, leases = {}, {}
      local max, dead, deadline = tonumber(ARGV[4]), ARGV[5], now + lease_ms
      for i, id in ipairs(ids) do
        local s = parse_state(states[i]) or {reads = 0, max = 0, dead = '?', put = now}
        if s.max == 0 then s.max = max end
        if s.dead == '?' then s.dead = dead end
        s.reads = s.reads + 1
        updates[2 * i - 1] = id
        updates[2 * i] = format_state(s)
        leases[2 * i - 1] = deadline
        leases[2 * i] = id
        tokens[i] = tostring(s.reads)
      end
      sliced('HSET', KEYS[5], updates)
      sliced('ZADD', KEYS[4], leases)
    end
    local at = #out
    for i, id in ipairs(ids) do
      out[at + 1] = id
      out[at + 2] = items[i]
      out[at + 3] = tokens[i] or ''
      at = at + 3
    end
  end
end
-- Pass the wake token on while items remain, for the next blocked reader (a
-- blocked peek may have taken it); once ready is empty a token left over
-- would only cause a useless wake.
if redis.call('LLEN', KEYS[1]) > 0 then
  wake(KEYS[6])
elseif mode ~= 'peek' then
  redis.call('DEL', KEYS[6])
end
out[2] = next_change()
return out
