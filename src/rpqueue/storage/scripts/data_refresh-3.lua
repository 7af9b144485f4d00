-- Extend the leases of items a reader still works on.
-- KEYS[1] leases   ZSET  id -> lease deadline (ms)
-- KEYS[2] meta     HASH  id -> item state (lib/data_common.lua)
-- KEYS[3] wake     LIST  wake token for blocked readers
-- ARGV[1] new lease length from now, in ms (0 ends the lease now: the item
--         is readable again, and the read counted)
-- ARGV[2] '1': ARGV[3..] are id, token pairs and a lease is extended only
--         for the holder of that token; '0': ARGV[3..] are ids
-- Only leases still live by Redis time are extended.
-- Returns the ids whose lease was extended.
--@include lib/common.lua
--@include lib/data_common.lua

local now = now_ms()
local deadline = now + tonumber(ARGV[1])
local fenced = ARGV[2] == '1'
local step = fenced and 2 or 1
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local out = {}
for i = 3, #ARGV, step do
  local id = ARGV[i]
  local ok = lease_live(KEYS[1], id, now)
  if ok and fenced then
    local s = parse_state(redis.call('HGET', KEYS[2], id))
    ok = s ~= nil and tostring(s.reads) == ARGV[i + 1]
  end
  if ok then
    redis.call('ZADD', KEYS[1], 'XX', deadline, id)
    out[#out + 1] = id
  end
end
-- A shortened lease may now be the earliest deadline: blocked readers must
-- recompute how long they sleep.
if #out > 0 and first[2] and deadline < tonumber(first[2]) then wake(KEYS[3]) end
return out
