-- Give back a task that was taken but never started (its worker is stopping),
-- as if it had not been taken: front of the line, the attempt not counted.
-- KEYS[1] leases   ZSET  id -> lease deadline (ms)
-- KEYS[2] ready    LIST  ids waiting to run
-- KEYS[3] meta     HASH  id -> mutable task state
-- KEYS[4] wake     LIST  wake token for idle workers
-- ARGV[1] id
-- ARGV[2] lease token the take returned
-- Returns 1 given back, 0 when the caller no longer holds the lease.
--@include lib/common.lua

local id = ARGV[1]
local ok, m = holds_lease(KEYS[1], KEYS[3], id, ARGV[2])
if not ok then return 0 end
redis.call('ZREM', KEYS[1], id)
if m and m.vis > 0 then
  m.left = m.left + 1
  redis.call('HSET', KEYS[3], id, format_meta(m))
end
redis.call('LPUSH', KEYS[2], id)
wake(KEYS[4])
return 1
