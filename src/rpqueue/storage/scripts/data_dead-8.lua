-- List the oldest dead letters of a data queue, after the same upkeep a
-- read does (so leases that expired on their last attempt are buried first).
-- KEYS[1..8] ready, msg, delayed, leases, meta, wake, dead, deadmsg
--            (as listed in data_common.lua)
-- ARGV[1] most dead letters to list
-- ARGV[2] most delayed items / expired leases to handle in this call
-- Returns {id, record, id, record, ...}, oldest first; removes nothing
-- (data_dead_remove-2 does, so concurrent readers cannot both claim one).
--@include lib/common.lua
--@include data_common.lua

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
