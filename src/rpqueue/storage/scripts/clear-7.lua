-- Remove waiting and delayed tasks of one queue, a bounded batch per call
-- so a huge queue never blocks Redis for long; the caller loops until 0.
-- Running tasks (in leases) are left to finish.
-- KEYS[1] ready    LIST  ids waiting to run at the default priority
-- KEYS[2] delayed  ZSET  id -> due time (ms)
-- KEYS[3] msg      HASH  id -> ready time + message JSON
-- KEYS[4] meta     HASH  id -> mutable task state
-- KEYS[5] leases   ZSET  id -> lease deadline (ms)
-- KEYS[6] prio     ZSET  id -> priority band + sequence
-- KEYS[7] uniq     HASH  unique key -> "<until_ms> <id>"
-- ARGV[1] most tasks to remove in this call
-- Returns how many were removed.
--@include lib/common.lua

local K = {ready = KEYS[1], delayed = KEYS[2], msg = KEYS[3], meta = KEYS[4], leases = KEYS[5],
           prio = KEYS[6], uniq = KEYS[7]}
local limit = tonumber(ARGV[1])
local removed = 0
local function drop(id)
  if not redis.call('ZSCORE', K.leases, id) then
    forget(K, id, parse_meta(redis.call('HGET', K.meta, id)))
  end
  removed = removed + 1
end
local ids = redis.call('LPOP', K.ready, limit)
if ids then
  for _, id in ipairs(ids) do drop(id) end
end
if removed < limit then
  local popped = redis.call('ZPOPMIN', K.prio, limit - removed)
  for i = 1, #popped, 2 do drop(popped[i]) end
end
if removed < limit then
  ids = redis.call('ZRANGE', K.delayed, 0, limit - removed - 1)
  for _, id in ipairs(ids) do
    redis.call('ZREM', K.delayed, id)
    drop(id)
  end
end
return removed
