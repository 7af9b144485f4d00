-- Queue one task, now or after a delay.
-- KEYS[1] ready    LIST  ids waiting to run
-- KEYS[2] msg      HASH  id -> message JSON
-- KEYS[3] delayed  ZSET  id -> due time (ms)
-- KEYS[4] meta     HASH  id -> mutable task state
-- KEYS[5] wake     LIST  wake token for idle workers
-- KEYS[6] stats    HASH  queue counters
-- KEYS[7] leases   ZSET  id -> lease deadline (ms)
-- ARGV[1] id
-- ARGV[2] message (stored as given)
-- ARGV[3] delay in ms (<= 0: run now)
-- ARGV[4] meta string, or '' for a plain 0/1 task
-- ARGV[5] largest message accepted, in bytes (0: no limit)
-- Returns {status, now_ms}: status 1 queued, 2 replaced the pending task with
-- that id, 0 refused because a task with that id is running.
--@include lib/common.lua
--@include lib/enqueue.lua

local too_big = check_size(ARGV[2], tonumber(ARGV[5]))
if too_big then return redis.error_reply(too_big) end
local now = now_ms()
local status = enqueue_one(now, ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4])
if status ~= 0 then
  redis.call('HINCRBY', KEYS[6], 'enqueued', 1)
end
return {status, now}
