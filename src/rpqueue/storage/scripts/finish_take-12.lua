-- Finish one task and take the next from the same queue in one round trip:
-- done-6 followed by take-11. A worker uses it when the queue it just
-- served is its highest-priority one, so no priority is skipped.
-- KEYS[1]  ready    LIST  ids waiting to run at the default priority
-- KEYS[2]  msg      HASH  id -> ready time + message JSON
-- KEYS[3]  delayed  ZSET  id -> due time (ms)
-- KEYS[4]  leases   ZSET  id -> lease deadline (ms)
-- KEYS[5]  meta     HASH  id -> mutable task state
-- KEYS[6]  wake     LIST  wake token for idle workers
-- KEYS[7]  dead     ZSET  id -> time of death (ms)
-- KEYS[8]  deadmsg  HASH  id -> dead-letter record
-- KEYS[9]  stats    HASH  queue counters
-- KEYS[10] prio     ZSET  id -> priority band + sequence
-- KEYS[11] uniq     HASH  unique key -> "<until_ms> <id>"
-- KEYS[12] result   STRING  the saved result of the finished task
-- ARGV[1] lease length in ms for tasks without a visibility timeout
-- ARGV[2] most delayed tasks / expired leases to handle in this call
-- ARGV[3] id of the finished task
-- ARGV[4] its lease token
-- ARGV[5] its result JSON
-- ARGV[6] how long to keep the result, in ms (0: do not keep it)
-- ARGV[7] opts "<keep_ms> <events_maxlen>" (parse_opts)
-- ARGV[8] largest message take returns, in bytes (0: no limit)
-- Returns take-11's reply with done-6's reply (1 or 0) appended.
--@include lib/common.lua
--@include lib/finish.lua
--@include lib/take.lua

local K = take_keys()
local keep, maxlen = parse_opts(ARGV[7])
-- One clock reading for both halves: the task ends when the next is taken.
local now = now_ms()
local finished = finish(K, KEYS[12], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), keep, maxlen,
  now)
local reply = take_next(K, tonumber(ARGV[1]), tonumber(ARGV[2]), keep, maxlen,
  tonumber(ARGV[8]) or 0, now)
reply[6] = finished
return reply
