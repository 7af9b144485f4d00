-- Where a task is in its life.
-- KEYS[1] delayed  ZSET  id -> due time (ms)
-- KEYS[2] leases   ZSET  id -> lease deadline (ms)
-- KEYS[3] msg      HASH  id -> message JSON
-- ARGV[1] id
-- Returns 'early' (delayed, not due), 'late' (due, not yet moved to ready),
-- 'waiting', 'started', or 'done' (finished, cancelled, or never known).
--@include lib/common.lua

local id = ARGV[1]
local due = redis.call('ZSCORE', KEYS[1], id)
if due then
  if tonumber(due) > now_ms() then return 'early' end
  return 'late'
end
if redis.call('ZSCORE', KEYS[2], id) then return 'started' end
if redis.call('HEXISTS', KEYS[3], id) == 1 then return 'waiting' end
return 'done'
