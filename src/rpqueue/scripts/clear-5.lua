-- Remove waiting and delayed tasks of one queue, a bounded batch per call
-- so a huge queue never blocks Redis for long; the caller loops until 0.
-- Running tasks (in leases) are left to finish.
-- KEYS[1] ready    LIST  ids waiting to run
-- KEYS[2] delayed  ZSET  id -> due time (ms)
-- KEYS[3] msg      HASH  id -> message JSON
-- KEYS[4] meta     HASH  id -> mutable task state
-- KEYS[5] leases   ZSET  id -> lease deadline (ms)
-- ARGV[1] most tasks to remove in this call
-- Returns how many were removed.

local limit = tonumber(ARGV[1])
local removed = 0
local function drop(id)
  if not redis.call('ZSCORE', KEYS[5], id) then
    redis.call('HDEL', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
  end
  removed = removed + 1
end
local ids = redis.call('LPOP', KEYS[1], limit)
if ids then
  for _, id in ipairs(ids) do drop(id) end
end
if removed < limit then
  ids = redis.call('ZRANGE', KEYS[2], 0, limit - removed - 1)
  for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[2], id)
    drop(id)
  end
end
return removed
