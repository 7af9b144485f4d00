-- Put items into a data queue, readable now or after a delay.
-- KEYS[1] ready    LIST  ids readable now
-- KEYS[2] msg      HASH  id -> item JSON (stored as given)
-- KEYS[3] delayed  ZSET  id -> time it becomes readable (ms)
-- KEYS[4] meta     HASH  id -> item state (lib/data_common.lua)
-- KEYS[5] wake     LIST  wake token for blocked readers
-- ARGV[1] leased reads allowed, 0 to let the first leased read decide
-- ARGV[2] dead-letter when out of reads: '1', '0', or '?' to let it decide
-- ARGV[3] delay in ms (0: readable now)
-- ARGV[4] largest item accepted, in bytes (0: no limit); every item is
--         checked before the first write
-- ARGV[5..] id, item, id, item, ...
-- Returns the Redis time of the put in ms.
--@include lib/common.lua
--@include lib/data_common.lua

local max, dead, delay, limit = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if limit > 0 then
  for i = 6, #ARGV, 2 do
    if #ARGV[i] > limit then
      return redis.error_reply('item ' .. ARGV[i - 1] .. ': message of ' .. #ARGV[i] ..
        ' bytes exceeds the limit of ' .. limit .. ' bytes')
    end
  end
end
local now = now_ms()
local state = format_state({reads = 0, max = max, dead = dead, put = now})
local ids, states, schedule = {}, {}, {}
for i = 5, #ARGV, 2 do
  local id = ARGV[i]
  ids[#ids + 1] = id
  states[#states + 1] = id
  states[#states + 1] = state
  if delay > 0 then
    schedule[#schedule + 1] = now + delay
    schedule[#schedule + 1] = id
  end
end
if #ids == 0 then return now end
sliced('HSET', KEYS[2], ARGV, 5, #ARGV)
sliced('HSET', KEYS[4], states)
if delay > 0 then
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  sliced('ZADD', KEYS[3], schedule)
  -- Blocked readers sleep until the earliest due time: an earlier one must
  -- wake them to shorten that sleep.
  if not first[2] or now + delay < tonumber(first[2]) then wake(KEYS[5]) end
else
  sliced('RPUSH', KEYS[1], ids)
  wake(KEYS[5])
end
return now
