-- Finish items: remove them from the data queue.
-- KEYS[1] leases   ZSET  id -> lease deadline (ms)
-- KEYS[2] msg      HASH  id -> item JSON
-- KEYS[3] meta     HASH  id -> item state (lib/data_common.lua)
-- KEYS[4] delayed  ZSET  id -> time it becomes readable (ms)
-- ARGV[1] '1': ARGV[2..] are id, token pairs and an item is finished only
--         by the holder of its live lease; '0': ARGV[2..] are ids, finished
--         wherever they are (leased, waiting or delayed)
-- An id left behind in ready is skipped by the next read.
-- Returns how many items were finished.
--@include lib/common.lua
--@include lib/data_common.lua

local ids = {}
if ARGV[1] == '1' then
  local now = now_ms()
  for i = 2, #ARGV, 2 do
    local id = ARGV[i]
    if lease_live(KEYS[1], id, now) then
      local s = parse_state(redis.call('HGET', KEYS[3], id))
      if s and tostring(s.reads) == ARGV[i + 1] then ids[#ids + 1] = id end
    end
  end
else
  for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
end
if #ids == 0 then return 0 end
sliced('ZREM', KEYS[1], ids)
sliced('ZREM', KEYS[4], ids)
sliced('HDEL', KEYS[3], ids)
return sliced('HDEL', KEYS[2], ids)
