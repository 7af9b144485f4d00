-- Cancel a task that has not started, or forget the saved result of one that ran.
-- KEYS[1] ready    LIST  ids waiting to run
-- KEYS[2] msg      HASH  id -> message JSON
-- KEYS[3] delayed  ZSET  id -> due time (ms)
-- KEYS[4] leases   ZSET  id -> lease deadline (ms)
-- KEYS[5] meta     HASH  id -> mutable task state
-- KEYS[6] result   STRING the saved result of this task
-- ARGV[1] id
-- Returns 1 removed before running, 0 unknown or running, -1 it had run and
-- its saved result was deleted.

local id = ARGV[1]
if redis.call('ZSCORE', KEYS[4], id) then
  return 0
end
if redis.call('HDEL', KEYS[2], id) == 1 then
  redis.call('HDEL', KEYS[5], id)
  if redis.call('ZREM', KEYS[3], id) == 0 then
    redis.call('LREM', KEYS[1], 1, id)
  end
  return 1
end
if redis.call('DEL', KEYS[6]) == 1 then
  return -1
end
return 0
