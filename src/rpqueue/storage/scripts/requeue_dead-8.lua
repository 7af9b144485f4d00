-- Put a dead-lettered task back in its queue with fresh attempts.
-- KEYS[1] ready    LIST  ids waiting to run at the default priority
-- KEYS[2] msg      HASH  id -> ready time + message JSON
-- KEYS[3] meta     HASH  id -> mutable task state
-- KEYS[4] dead     ZSET  id -> time of death (ms)
-- KEYS[5] deadmsg  HASH  id -> dead-letter record
-- KEYS[6] wake     LIST  wake token for idle workers
-- KEYS[7] prio     ZSET  id -> priority band + sequence
-- KEYS[8] stats    HASH  queue counters
-- ARGV[1] id
-- ARGV[2] meta string for the new life, or ''
-- Returns 1 requeued, 0 no such dead task.
-- Decoding the record is safe: the message inside is a JSON string, which
-- cjson gives back byte for byte, and it is stored as that string.
--@include lib/common.lua

local K = {ready = KEYS[1], msg = KEYS[2], meta = KEYS[3], dead = KEYS[4], deadmsg = KEYS[5],
           wake = KEYS[6], prio = KEYS[7], stats = KEYS[8]}
local id = ARGV[1]
local raw = redis.call('HGET', K.deadmsg, id)
if not raw then return 0 end
local ok, record = pcall(cjson.decode, raw)
if not ok or type(record) ~= 'table' or type(record.message) ~= 'string' then
  return redis.error_reply('dead-letter record of ' .. id .. ' has no message')
end
redis.call('HDEL', K.deadmsg, id)
redis.call('ZREM', K.dead, id)
redis.call('HSET', K.msg, id, stamp(now_ms(), record.message))
local m = nil
if ARGV[2] ~= '' then
  redis.call('HSET', K.meta, id, ARGV[2])
  m = parse_meta(ARGV[2])
end
push_ready(K, id, m, false)
wake(K.wake)
return 1
