-- Delete every live item of a data queue (dead letters stay).
-- KEYS[1] ready    LIST  ids readable now
-- KEYS[2] msg      HASH  id -> item JSON: one field per live item
-- KEYS[3] delayed  ZSET  id -> time it becomes readable (ms)
-- KEYS[4] leases   ZSET  id -> lease deadline (ms)
-- KEYS[5] meta     HASH  id -> item state
-- Returns how many items were deleted.
local n = redis.call('HLEN', KEYS[2])
-- UNLINK frees big queues in the background instead of stalling Redis.
redis.call('UNLINK', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return n
