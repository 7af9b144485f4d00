-- Count the items of a data queue, after the same upkeep a read does, so
-- expired leases count where the next read would find them.
-- KEYS[1..8] ready, msg, delayed, leases, meta, wake, dead, deadmsg
--            (as listed in data_common.lua)
-- ARGV[1] most delayed items / expired leases to handle in this call
-- Returns {available, invisible}: invisible are leased or delayed items.
--@include lib/common.lua
--@include data_common.lua

upkeep(now_ms(), tonumber(ARGV[1]))
local hidden = redis.call('ZCARD', KEYS[3]) + redis.call('ZCARD', KEYS[4])
return {redis.call('HLEN', KEYS[2]) - hidden, hidden}
