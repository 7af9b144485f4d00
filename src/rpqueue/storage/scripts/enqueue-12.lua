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
-- ARGV[8] optional opts "<keep_ms> <events_maxlen>" (parse_opts): with
--         events on, an 'enqueued' event is added
-- Returns {status, now_ms, detail}: status 1 queued, 2 replaced the pending
-- task with that id, 0 refused because a task with that id is running,
-- 3 a duplicate of the live unique task whose id is detail, 4 refused
-- because the queue is full (detail: its max_len).

-- The common case first, before the helpers: a new id from the producer, a
-- plain 0/1 task at priority 0, no delay, not unique, in an unbounded queue.
-- Nothing needs checking, and returning here skips defining the helpers
-- below, which Redis does again on every call (a third of the script's time).
-- It writes what enqueue_one (lib/enqueue.lua) writes for such a task.
if ARGV[7] == '1' and ARGV[4] == '' and ARGV[6] == '0' and tonumber(ARGV[3]) <= 0
    and (tonumber(ARGV[5]) == 0 or #ARGV[2] <= tonumber(ARGV[5]))
    and (not ARGV[8] or string.sub(ARGV[8], -2) == ' 0')
    and (tonumber(redis.call('HGET', KEYS[9], 'max_len')) or 0) <= 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', KEYS[2], ARGV[1], string.format('%013d:', now) .. ARGV[2])
  redis.call('RPUSH', KEYS[1], ARGV[1])
  if redis.call('LLEN', KEYS[5]) == 0 then redis.call('RPUSH', KEYS[5], '1') end
  redis.call('HINCRBY', KEYS[6], 'enqueued', 1)
  return {1, now, false}
end

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
  local _, maxlen = parse_opts(ARGV[8])
  emit(qbase(K.meta), maxlen, 'enqueued', ARGV[1], name_of(ARGV[2]), 1)
end
return {status, now, detail or false}
