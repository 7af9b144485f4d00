-- Remove dead letters of a data queue.
-- KEYS[1] dead     ZSET  id -> time it was dead-lettered (ms)
-- KEYS[2] deadmsg  HASH  id -> dead-letter record JSON
-- ARGV[1..] ids
-- Returns the ids this call removed: of two concurrent readers removing the
-- same dead letter, exactly one gets it back.
local out = {}
for _, id in ipairs(ARGV) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('HDEL', KEYS[2], id)
    out[#out + 1] = id
  end
end
return out
