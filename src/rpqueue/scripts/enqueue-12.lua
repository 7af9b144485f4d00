-- Queue one task, now or after a delay, behind the queue's policies
-- (unique keys, max length).
-- KEYS[1]  ready    LIST  ids waiting to run at the default priority
-- KEYS[2]  msg      HASH  id -> ready time + message JSON (see stamp)
-- KEYS[3]  delayed  ZSET  id -> due time (ms)
-- KEYS[4]  meta     HASH  id -> mutable task state
-- KEYS[5]  wake     LIST  wake token for idle workers
-- KEYS[6]  stats    HASH  queue counters
-- KEYS[7]  leases   ZSET  id -> lease deadline (ms)
-- KEYS[8]  prio     ZSET  id -> priority band + sequence
-- KEYS[9]  conf     HASH  queue settings (max_len, overflow)
-- KEYS[10] uniq     HASH  unique key -> "<until_ms> <id>"
-- KEYS[11] dead     ZSET  id -> time of death (ms)
-- KEYS[12] deadmsg  HASH  id -> dead-letter record
-- ARGV[1] id
-- ARGV[2] message (stored as given, after the ready-time stamp)
-- ARGV[3] delay in ms (<= 0: run now)
-- ARGV[4] meta string, or '' for a plain 0/1 task at priority 0
-- ARGV[5] largest message accepted, in bytes (0: no limit)
-- ARGV[6] how long a unique key holds, in ms (0: not unique; the key is in meta)
-- ARGV[7] 1 when the producer just made the id (it cannot be pending or
--         running: the look-ups are skipped), 0 for an id given by the caller
-- Returns {status, now_ms, detail}: status 1 queued, 2 replaced the pending
-- task with that id, 0 refused because a task with that id is running,
-- 3 a duplicate of the live unique task whose id is detail, 4 refused
-- because the queue is full (detail: its max_len).
--@include lib/common.lua
--@include lib/enqueue.lua

local K = {ready = KEYS[1], msg = KEYS[2], delayed = KEYS[3], meta = KEYS[4], wake = KEYS[5],
           stats = KEYS[6], leases = KEYS[7], prio = KEYS[8], conf = KEYS[9], uniq = KEYS[10],
           dead = KEYS[11], deadmsg = KEYS[12]}
local too_big = check_size(ARGV[2], tonumber(ARGV[5]))
if too_big then return redis.error_reply(too_big) end
local now = now_ms()
local max, overflow = queue_bound(K)
local status, detail = enqueue_checked(K, now, ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4],
  tonumber(ARGV[6]), max, overflow, ARGV[7] == '1')
if status == 1 or status == 2 then
  redis.call('HINCRBY', K.stats, 'enqueued', 1)
end
return {status, now, detail or false}
