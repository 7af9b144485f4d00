-- List the oldest dead letters of a data queue, after the same upkeep a
-- read does (so leases that expired on their last attempt are buried first).
-- KEYS[1] ready    LIST  ids readable now
-- KEYS[2] msg      HASH  id -> item JSON
-- KEYS[3] delayed  ZSET  id -> time it becomes readable (ms)
-- KEYS[4] leases   ZSET  id -> lease deadline (ms)
-- KEYS[5] meta     HASH  id -> item state (lib/data_common.lua)
-- KEYS[6] wake     LIST  wake token for blocked readers
-- KEYS[7] dead     ZSET  id -> time it was dead-lettered (ms)
-- KEYS[8] deadmsg  HASH  id -> dead-letter record JSON
-- ARGV[1] most dead letters to list
-- ARGV[2] most delayed items / expired leases to handle in this call
-- Returns {id, record, id, record, ...}, oldest first; removes nothing
-- (data_dead_remove-2 does, so concurrent readers cannot both claim one).
--@include lib/common.lua
--@include lib/data_common.lua

upkeep(now_ms(), tonumber(ARGV[2]))
local ids = redis.call('ZRANGE', KEYS[7], 0, tonumber(ARGV[1]) - 1)
local out = {}
for first = 1, #ids, SLICE do
  local last = math.min(first + SLICE - 1, #ids)
  local records = redis.call('HMGET', KEYS[8], unpack(ids, first, last))
  for i = first, last do
    out[2 * i - 1] = ids[i]
    out[2 * i] = records[i - first + 1] or false
  end
end
return out
