-- What happened to a task, for EnqueuedTask.state / error / progress.
-- KEYS[1] delayed  ZSET  id -> due time (ms)
-- KEYS[2] leases   ZSET  id -> lease deadline (ms)
-- KEYS[3] msg      HASH  id -> ready time + message JSON
-- KEYS[4] meta     HASH  id -> mutable task state
-- ARGV[1] id
-- Returns {live, attempt, total, record, progress}: live is 'running',
-- 'waiting', 'delayed' or 'retrying' for a task still queued or taken, else
-- false; attempt/total as attempt_of; record the task's state record
-- ("<state> <attempt> <total> <time_ms>[\n<error JSON>]") or false, also
-- for a live task (a retrying one keeps its last error there); progress
-- the last progress JSON or false.
--@include lib/common.lua

local id = ARGV[1]
local base = qbase(KEYS[4])
local m = parse_meta(redis.call('HGET', KEYS[4], id))
local live, attempt, total = false, 1, 1
if redis.call('ZSCORE', KEYS[2], id) then
  live = 'running'
  attempt, total = attempt_of(m, true)
else
  local queued = 'waiting'
  if redis.call('ZSCORE', KEYS[1], id) then
    queued = 'delayed'
  elseif redis.call('HEXISTS', KEYS[3], id) == 0 then
    queued = false
  end
  if queued then
    live = queued
    attempt, total = attempt_of(m, false)
    -- An attempt was used and another is due: a retry, delayed or not.
    if m and m.left < m.total then live = 'retrying' end
  end
end
return {live, attempt, total, redis.call('GET', base .. 'state:' .. id) or false,
        redis.call('GET', base .. 'progress:' .. id) or false}
