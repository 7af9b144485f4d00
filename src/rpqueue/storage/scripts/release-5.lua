-- Give back a task that was taken but never started (its worker is stopping),
-- as if it had not been taken: front of its line, the attempt not counted.
-- KEYS[1] leases   ZSET  id -> lease deadline (ms)
-- KEYS[2] ready    LIST  ids waiting to run at the default priority
-- KEYS[3] meta     HASH  id -> mutable task state
-- KEYS[4] wake     LIST  wake token for idle workers
-- KEYS[5] prio     ZSET  id -> priority band + sequence
-- ARGV[1] id
-- ARGV[2] lease token the take returned
-- Returns 1 given back, 0 when the caller no longer holds the lease.
--@include lib/common.lua

local K = {leases = KEYS[1], ready = KEYS[2], meta = KEYS[3], wake = KEYS[4], prio = KEYS[5]}
local id = ARGV[1]
local ok, m = holds_lease(K, id, ARGV[2])
if not ok then return 0 end
redis.call('ZREM', K.leases, id)
if m and m.vis > 0 then
  m.left = m.left + 1
  redis.call('HSET', K.meta, id, format_meta(m))
end
push_ready(K, id, m, true)
wake(K.wake)
return 1
