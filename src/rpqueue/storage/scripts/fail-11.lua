-- Record that a taken task failed (raised, or its message is unusable).
-- KEYS[1]  ready    LIST  ids waiting to run at the default priority
-- KEYS[2]  msg      HASH  id -> ready time + message JSON
-- KEYS[3]  leases   ZSET  id -> lease deadline (ms)
-- KEYS[4]  meta     HASH  id -> mutable task state
-- KEYS[5]  dead     ZSET  id -> time of death (ms)
-- KEYS[6]  deadmsg  HASH  id -> dead-letter record
-- KEYS[7]  stats    HASH  queue counters
-- KEYS[8]  wake     LIST  wake token for idle workers
-- KEYS[9]  delayed  ZSET  id -> due time (ms)
-- KEYS[10] prio     ZSET  id -> priority band + sequence
-- KEYS[11] uniq     HASH  unique key -> "<until_ms> <id>"
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

local K = {ready = KEYS[1], msg = KEYS[2], leases = KEYS[3], meta = KEYS[4], dead = KEYS[5],
           deadmsg = KEYS[6], stats = KEYS[7], wake = KEYS[8], delayed = KEYS[9],
           prio = KEYS[10], uniq = KEYS[11]}
local id, err, force, final = ARGV[1], ARGV[3], ARGV[4] == '1', ARGV[4] == '2'
local ok, m = holds_lease(K, id, ARGV[2])
if not ok then
  return 0
end
redis.call('ZREM', K.leases, id)
if not force and not final and m and m.vis > 0 and m.left > 0 then
  local delay = tonumber(ARGV[6]) or 0
  if delay > 0 then
    local due = now_ms() + delay
    redis.call('ZADD', K.delayed, due, id)
    if redis.call('ZRANGE', K.delayed, 0, 0)[1] == id then wake(K.wake) end
  else
    push_ready(K, id, m, false)
    wake(K.wake)
  end
  redis.call('HINCRBY', K.stats, 'retried', 1)
  return 2
end
redis.call('HINCRBY', K.stats, 'failed', 1)
if force or (m and m.dead) then
  local used = 1
  if m and m.vis > 0 then used = m.total - m.left end
  bury(K, id, m, now_ms(), ARGV[5], err, used)
  return 3
end
forget(K, id, m)
return 1
