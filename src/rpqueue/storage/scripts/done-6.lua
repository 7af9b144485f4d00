-- Record that a taken task finished, and save its result.
-- KEYS[1] leases   ZSET  id -> lease deadline (ms)
-- KEYS[2] msg      HASH  id -> ready time + message JSON
-- KEYS[3] meta     HASH  id -> mutable task state
-- KEYS[4] stats    HASH  queue counters
-- KEYS[5] result   STRING  the saved result of this task
-- KEYS[6] uniq     HASH  unique key -> "<until_ms> <id>"
-- ARGV[1] id
-- ARGV[2] lease token the take returned
-- ARGV[3] result JSON
-- ARGV[4] how long to keep the result, in ms (0: do not keep it)
-- ARGV[5] opts "<keep_ms> <events_maxlen>" (parse_opts; absent: no state
--         record, no event)
-- Returns 1, or 0 when the caller no longer holds the lease (its lease
-- expired and the task was requeued or handed on): nothing is written then.
--@include lib/common.lua
--@include lib/finish.lua

local K = {leases = KEYS[1], msg = KEYS[2], meta = KEYS[3], stats = KEYS[4], uniq = KEYS[6]}
local keep, maxlen = parse_opts(ARGV[5])
return finish(K, KEYS[5], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), keep, maxlen)
