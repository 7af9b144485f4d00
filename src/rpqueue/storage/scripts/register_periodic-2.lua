-- Register a periodic task's schedule, keeping the planned time other
-- workers already agreed on unless the schedule itself changed.
-- KEYS[1] periodic      ZSET  task name -> next planned run (ms)
-- KEYS[2] periodic_def  HASH  task name -> schedule description
-- ARGV[1] task name
-- ARGV[2] schedule description (e.g. "every 25s", "cron 0 5 tue * *")
-- ARGV[3] first planned run (ms) if the schedule is new or changed
-- Returns the planned run now in force (ms).

local name = ARGV[1]
local current = redis.call('ZSCORE', KEYS[1], name)
if current and redis.call('HGET', KEYS[2], name) == ARGV[2] then
  return tonumber(current)
end
redis.call('ZADD', KEYS[1], ARGV[3], name)
redis.call('HSET', KEYS[2], name, ARGV[2])
return tonumber(ARGV[3])
