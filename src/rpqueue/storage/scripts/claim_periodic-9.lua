-- Claim one due run of a periodic task and queue it, exactly once however
-- many workers try: the claim succeeds only for the caller that names the
-- planned time still in force (compare-and-set), and moves it on.
-- KEYS[1] ready    LIST  ids waiting to run at the default priority
-- KEYS[2] msg      HASH  id -> ready time + message JSON
-- KEYS[3] delayed  ZSET  id -> due time (ms)
-- KEYS[4] meta     HASH  id -> mutable task state
-- KEYS[5] wake     LIST  wake token for idle workers
-- KEYS[6] stats    HASH  queue counters
-- KEYS[7] leases   ZSET  id -> lease deadline (ms)
-- KEYS[8] periodic ZSET  task name -> next planned run (ms)
-- KEYS[9] prio     ZSET  id -> priority band + sequence
-- ARGV[1] task name
-- ARGV[2] planned run the caller saw (ms)
-- ARGV[3] the planned run after it (ms), computed by the caller
-- ARGV[4] id for the queued run
-- ARGV[5] message for the queued run
-- ARGV[6] meta string, or ''
-- Returns {1, next planned, now} when claimed; {0, planned in force or -1, now}
-- when not due yet, already claimed by another worker, or unregistered.
-- Periodic runs are not held to a queue's max_len: a schedule is a promise.
--@include lib/common.lua
--@include lib/enqueue.lua

local K = {ready = KEYS[1], msg = KEYS[2], delayed = KEYS[3], meta = KEYS[4], wake = KEYS[5],
           stats = KEYS[6], leases = KEYS[7], prio = KEYS[9]}
local now = now_ms()
local current = redis.call('ZSCORE', KEYS[8], ARGV[1])
if not current then return {0, -1, now} end
current = tonumber(current)
if current ~= tonumber(ARGV[2]) or current > now then
  return {0, current, now}
end
redis.call('ZADD', KEYS[8], ARGV[3], ARGV[1])
if enqueue_one(K, now, ARGV[4], ARGV[5], 0, ARGV[6]) ~= 0 then
  redis.call('HINCRBY', K.stats, 'enqueued', 1)
end
return {1, tonumber(ARGV[3]), now}
