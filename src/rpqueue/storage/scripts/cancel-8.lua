-- Cancel a task that has not started, or forget the saved result of one that ran.
-- KEYS[1] ready    LIST  ids waiting to run at the default priority
-- KEYS[2] msg      HASH  id -> ready time + message JSON
-- KEYS[3] delayed  ZSET  id -> due time (ms)
-- KEYS[4] leases   ZSET  id -> lease deadline (ms)
-- KEYS[5] meta     HASH  id -> mutable task state
-- KEYS[6] result   STRING  the saved result of this task
-- KEYS[7] prio     ZSET  id -> priority band + sequence
-- KEYS[8] uniq     HASH  unique key -> "<until_ms> <id>"
-- ARGV[1] id
-- ARGV[2] opts "<keep_ms> <events_maxlen>" (parse_opts): a cancelled task
--         leaves a 'cancelled' state record and event
-- Returns 1 removed before running, 0 unknown or running, -1 it had run and
-- its saved result was deleted.
--@include lib/common.lua

local K = {ready = KEYS[1], msg = KEYS[2], delayed = KEYS[3], leases = KEYS[4], meta = KEYS[5],
           prio = KEYS[7], uniq = KEYS[8]}
local id = ARGV[1]
if redis.call('ZSCORE', K.leases, id) then
  return 0
end
if redis.call('HEXISTS', K.msg, id) == 1 then
  local keep, maxlen = parse_opts(ARGV[2])
  local m = parse_meta(redis.call('HGET', K.meta, id))
  local base, now = qbase(K.meta), now_ms()
  local attempt, total = attempt_of(m, false)
  record_state(base, id, 'cancelled', attempt, total, now, keep, nil)
  if maxlen > 0 then
    emit(base, maxlen, 'cancelled', id, name_of(unstamp(redis.call('HGET', K.msg, id))), attempt)
  end
  forget(K, id, m)
  if redis.call('ZREM', K.delayed, id) == 0 then
    unlist(K, id)
  end
  return 1
end
if redis.call('DEL', KEYS[6]) == 1 then
  return -1
end
return 0
