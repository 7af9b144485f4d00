-- Record that a taken task failed (raised, or its message is unusable).
-- KEYS[1]  ready    LIST  ids waiting to run at the default priority
-- KEYS[2]  msg      HASH  id -> ready time + message JSON
-- KEYS[3]  leases   ZSET  id -> lease deadline (ms)
-- KEYS[4]  meta     HASH  id -> mutable task state
-- KEYS[5]  dead     ZSET  id -> time of death (ms)
-- KEYS[6]  deadmsg  HASH  id -> dead-letter record
-- KEYS[7]  stats    HASH  queue counters
-- KEYS[8]  wake     LIST  wake token for idle workers
-- KEYS[9]  delayed  ZSET  id -> due time (ms)
-- KEYS[10] prio     ZSET  id -> priority band + sequence
-- KEYS[11] uniq     HASH  unique key -> "<until_ms> <id>"
-- ARGV[1] id
-- ARGV[2] lease token the take returned
-- ARGV[3] error text (kept in the dead letter)
-- ARGV[4] mode: 0 normal (retry while attempts are left, then dead-letter
--         or drop per use_dead); 1 dead-letter whatever the task's settings
--         (malformed message, unknown task); 2 final: no retry, then as 0
--         (an aborted task)
-- ARGV[5] reason recorded with a dead letter
-- ARGV[6] delay in ms before the next attempt (backoff), 0 for at once
-- ARGV[7] opts "<keep_ms> <events_maxlen>" (parse_opts)
-- ARGV[8] the error record JSON the worker built (kept in the state record)
-- ARGV[9] for a task without a visibility timeout retried by retry_on: its
--         message for the next attempt (one attempt fewer), '' otherwise;
--         it is requeued under the same id
-- ARGV[10] attempts such a task may have in all (when it has no meta yet)
-- ARGV[11] 'aborted' when the run was aborted, else ''
-- Returns 0 fenced (lease lost: nothing written), 1 dropped, 2 requeued for
-- another attempt, 3 dead-lettered.
--@include lib/common.lua

local K = {ready = KEYS[1], msg = KEYS[2], leases = KEYS[3], meta = KEYS[4], dead = KEYS[5],
           deadmsg = KEYS[6], stats = KEYS[7], wake = KEYS[8], delayed = KEYS[9],
           prio = KEYS[10], uniq = KEYS[11]}
local id, err, force, final = ARGV[1], ARGV[3], ARGV[4] == '1', ARGV[4] == '2'
local keep, maxlen = parse_opts(ARGV[7])
local record, again = ARGV[8] or '', ARGV[9] or ''
local ok, m = holds_lease(K, id, ARGV[2])
if not ok then
  return 0
end
local base, now = qbase(K.meta), now_ms()
local attempt, total = attempt_of(m, true)
local name = ''
if maxlen > 0 then name = name_of(unstamp(redis.call('HGET', K.msg, id))) end
redis.call('ZREM', K.leases, id)

-- Requeue under the same id, after `delay` ms or at once.
local function requeue(delay, message)
  if delay > 0 then
    local due = now + delay
    if message then redis.call('HSET', K.msg, id, stamp(due, message)) end
    redis.call('ZADD', K.delayed, due, id)
    if redis.call('ZRANGE', K.delayed, 0, 0)[1] == id then wake(K.wake) end
  else
    if message then redis.call('HSET', K.msg, id, stamp(now, message)) end
    push_ready(K, id, m, false)
    wake(K.wake)
  end
  redis.call('HINCRBY', K.stats, 'retried', 1)
  record_state(base, id, 'retrying', attempt, total, now, keep, record)
  emit(base, maxlen, 'retrying', id, name, attempt)
end

local delay = tonumber(ARGV[6]) or 0
if not force and not final and m and m.vis > 0 and m.left > 0 then
  requeue(delay, nil)
  return 2
end
if not force and not final and again ~= '' then
  -- A task without a visibility timeout counts its attempts in meta from
  -- its first retry on, so the handle and the dead letter see them all.
  if not m then
    local all = tonumber(ARGV[10]) or 1
    m = {vis = 0, total = all, left = all, dead = false, prio = 0, ukey = ''}
    total = all
  end
  m.left = m.left - 1
  redis.call('HSET', K.meta, id, format_meta(m))
  requeue(delay, again)
  return 2
end
redis.call('HINCRBY', K.stats, 'failed', 1)
local state = 'failed'
local code = 1
if force or (m and m.dead) then
  bury(K, id, m, now, ARGV[5], err, attempt)
  state, code = 'dead', 3
else
  forget(K, id, m)
end
local event = state
if ARGV[11] == 'aborted' then event = 'aborted' end
record_state(base, id, event, attempt, total, now, keep, record)
emit(base, maxlen, event, id, name, attempt)
return code
