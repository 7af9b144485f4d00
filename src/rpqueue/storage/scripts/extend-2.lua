-- Extend the lease of a running task (its holder is still working on it).
-- KEYS[1] leases   ZSET  id -> lease deadline (ms)
-- KEYS[2] meta     HASH  id -> mutable task state
-- ARGV[1] id
-- ARGV[2] lease token the take returned
-- ARGV[3] new lease length from now, in ms
-- Returns the new deadline in ms, or 0 when the caller no longer holds the lease.
--@include lib/common.lua

if not holds_lease({leases = KEYS[1], meta = KEYS[2]}, ARGV[1], ARGV[2]) then
  return 0
end
local deadline = now_ms() + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], 'XX', deadline, ARGV[1])
return deadline
