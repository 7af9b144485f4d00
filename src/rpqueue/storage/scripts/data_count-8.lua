-- Count the items of a data queue, after the same upkeep a read does, so
-- expired leases count where the next read would find them.
-- KEYS[1] ready    LIST  ids readable now
-- KEYS[2] msg      HASH  id -> item JSON
-- KEYS[3] delayed  ZSET  id -> time it becomes readable (ms)
-- KEYS[4] leases   ZSET  id -> lease deadline (ms)
-- KEYS[5] meta     HASH  id -> item state (lib/data_common.lua)
-- KEYS[6] wake     LIST  wake token for blocked readers
-- KEYS[7] dead     ZSET  id -> time it was dead-lettered (ms)
-- KEYS[8] deadmsg  HASH  id -> dead-letter record JSON
-- ARGV[1] most delayed items / expired leases to handle in this call
-- Returns {available, invisible}: invisible are leased or delayed items.
--@include lib/common.lua
--@include lib/data_common.lua

upkeep(now_ms(), tonumber(ARGV[1]))
local hidden = redis.call('ZCARD', KEYS[3]) + redis.call('ZCARD', KEYS[4])
return {redis.call('HLEN', KEYS[2]) - hidden, hidden}
