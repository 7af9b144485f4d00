-- Put a dead-lettered task back in its queue with fresh attempts.
-- KEYS[1] ready    LIST  ids waiting to run
-- KEYS[2] msg      HASH  id -> message JSON
-- KEYS[3] meta     HASH  id -> mutable task state
-- KEYS[4] dead     ZSET  id -> time of death (ms)
-- KEYS[5] deadmsg  HASH  id -> dead-letter record
-- KEYS[6] wake     LIST  wake token for idle workers
-- ARGV[1] id
-- ARGV[2] meta string for the new life, or ''
-- Returns 1 requeued, 0 no such dead task.
-- Decoding the record is safe: the message inside is a JSON string, which
-- cjson gives back byte for byte, and it is stored as that string.
--@include lib/common.lua

local id = ARGV[1]
local raw = redis.call('HGET', KEYS[5], id)
if not raw then return 0 end
local ok, record = pcall(cjson.decode, raw)
if not ok or type(record) ~= 'table' or type(record.message) ~= 'string' then
  return redis.error_reply('dead-letter record of ' .. id .. ' has no message')
end
redis.call('HDEL', KEYS[5], id)
redis.call('ZREM', KEYS[4], id)
redis.call('HSET', KEYS[2], id, record.message)
if ARGV[2] ~= '' then redis.call('HSET', KEYS[3], id, ARGV[2]) end
redis.call('RPUSH', KEYS[1], id)
wake(KEYS[6])
return 1
