-- Record that a taken task failed (raised, or its message is unusable).
-- KEYS[1] ready    LIST  ids waiting to run
-- KEYS[2] msg      HASH  id -> message JSON
-- KEYS[3] leases   ZSET  id -> lease deadline (ms)
-- KEYS[4] meta     HASH  id -> mutable task state
-- KEYS[5] dead     ZSET  id -> time of death (ms)
-- KEYS[6] deadmsg  HASH  id -> dead-letter record
-- KEYS[7] stats    HASH  queue counters
-- KEYS[8] wake     LIST  wake token for idle workers
-- KEYS[9] delayed  ZSET  id -> due time (ms)
-- ARGV[1] id
-- ARGV[2] lease token the take returned
-- ARGV[3] error text (kept in the dead letter)
-- ARGV[4] mode: 0 normal (retry while attempts are left, then dead-letter
--         or drop per use_dead); 1 dead-letter whatever the task's settings
--         (malformed message, unknown task); 2 final: no retry, then as 0
--         (an aborted task)
-- ARGV[5] reason recorded with a dead letter
-- ARGV[6] delay in ms before the next attempt (backoff), 0 for at once
-- Returns 0 fenced (lease lost: nothing written), 1 dropped, 2 requeued for
-- another attempt, 3 dead-lettered.
--@include lib/common.lua

local id, err, force, final = ARGV[1], ARGV[3], ARGV[4] == '1', ARGV[4] == '2'
local ok, m = holds_lease(KEYS[3], KEYS[4], id, ARGV[2])
if not ok then
  return 0
end
redis.call('ZREM', KEYS[3], id)
if not force and not final and m and m.vis > 0 and m.left > 0 then
  local delay = tonumber(ARGV[6]) or 0
  if delay > 0 then
    local due = now_ms() + delay
    redis.call('ZADD', KEYS[9], due, id)
    if redis.call('ZRANGE', KEYS[9], 0, 0)[1] == id then wake(KEYS[8]) end
  else
    redis.call('RPUSH', KEYS[1], id)
    wake(KEYS[8])
  end
  redis.call('HINCRBY', KEYS[7], 'retried', 1)
  return 2
end
redis.call('HINCRBY', KEYS[7], 'failed', 1)
if force or (m and m.dead) then
  local used = 1
  if m and m.vis > 0 then used = m.total - m.left end
  bury(KEYS[2], KEYS[4], KEYS[5], KEYS[6], KEYS[7], id, now_ms(), ARGV[5], err, used)
  return 3
end
redis.call('HDEL', KEYS[2], id)
redis.call('HDEL', KEYS[4], id)
return 1
