-- Take the next task of one queue, after moving due delayed tasks to ready
-- and acting on expired leases. Taking is one atomic step: the id leaves
-- its waiting line and enters `leases` together, so a worker that dies at
-- any instant leaves every task either queued or recorded as taken.
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
-- ARGV[1] lease length in ms for tasks without a visibility timeout (the
--         worker renews it while the task runs; it only bounds how long a
--         crashed worker's task is shown as started)
-- ARGV[2] most delayed tasks / expired leases to handle in this call
-- ARGV[3] opts "<keep_ms> <events_maxlen>" (parse_opts)
-- ARGV[4] largest message returned, in bytes (0: no limit): a larger one is
--         dead-lettered here, with only its head kept ('oversized message')
-- Returns {id or false, message or false, lease token, now_ms, next_ms}:
-- next_ms is the earliest due time or lease deadline still pending (-1 if
-- none), so an idle worker knows how long it may sleep.
--@include lib/common.lua
--@include lib/take.lua

local keep, maxlen = parse_opts(ARGV[3])
return take_next(take_keys(), tonumber(ARGV[1]), tonumber(ARGV[2]), keep, maxlen,
  tonumber(ARGV[4]) or 0)
