-- Queue many tasks of one queue in one call, all with the same delay.
-- KEYS[1]  ready    LIST  ids waiting to run at the default priority
-- KEYS[2]  msg      HASH  id -> ready time + message JSON
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
-- ARGV[1] delay in ms (<= 0: run now)
-- ARGV[2] largest message accepted, in bytes (0: no limit)
-- ARGV[3] how long unique keys hold, in ms (0: not unique)
-- ARGV[4] 1 when the producer just made every id (none can be pending or
--         running), 0 when ids were given by the caller
-- ARGV[5] the meta string shared by every task ('' for plain 0/1 tasks at
--         priority 0), or '*' when each task brings its own
-- ARGV[6] opts "<keep_ms> <events_maxlen>" (parse_opts): with events on,
--         each queued task adds an 'enqueued' event
-- ARGV[7..] id, message pairs; with '*', id, message, meta triples
-- Every size is checked before the first write (scripts do not roll back),
-- and so is room in a bounded queue that refuses: a batch that does not fit
-- is refused whole.
-- Returns a list with one reply per task: its status as enqueue-12, or for
-- a duplicate of a live unique task, that task's id (a string).
--@include lib/common.lua
--@include lib/enqueue.lua

local K = {ready = KEYS[1], msg = KEYS[2], delayed = KEYS[3], meta = KEYS[4], wake = KEYS[5],
           stats = KEYS[6], leases = KEYS[7], prio = KEYS[8], conf = KEYS[9], uniq = KEYS[10],
           dead = KEYS[11], deadmsg = KEYS[12]}
local delay, limit, unique_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local fresh, shared = ARGV[4] == '1', ARGV[5]
local step = 2
if shared == '*' then step = 3 end
for i = 8, #ARGV, step do
  local too_big = check_size(ARGV[i], limit)
  if too_big then return redis.error_reply('task ' .. ARGV[i - 1] .. ': ' .. too_big) end
end
local count = (#ARGV - 6) / step
local _, maxlen = parse_opts(ARGV[6])
local base = qbase(K.meta)
local max, overflow = queue_bound(K)
if max and overflow ~= 'drop_oldest' and queued_count(K) + count > max then
  return redis.error_reply('QUEUEFULL ' .. count .. ' tasks do not fit: ' .. queued_count(K) ..
    ' of max_len ' .. max .. ' queued')
end
local now = now_ms()
local out = {}

local function meta_of(i)
  if step == 3 then return ARGV[i + 2] end
  return shared
end

if fresh and unique_ms == 0 and delay <= 0 and (not max or overflow ~= 'drop_oldest') then
  -- The common batch: new ids, nothing to check per task. One HSET and one
  -- RPUSH for the whole call instead of several commands per task.
  local msgs, metas, plain = {}, {}, {}
  local shared_m = nil
  if step == 2 and shared ~= '' then shared_m = parse_meta(shared) end
  for i = 7, #ARGV, step do
    local id, meta = ARGV[i], meta_of(i)
    msgs[#msgs + 1] = id
    msgs[#msgs + 1] = stamp(now, ARGV[i + 1])
    local m = shared_m
    if meta ~= '' then
      metas[#metas + 1] = id
      metas[#metas + 1] = meta
      if step == 3 then m = parse_meta(meta) end
    end
    if m and m.prio ~= 0 then
      push_ready(K, id, m, false)
    else
      plain[#plain + 1] = id
    end
    out[#out + 1] = 1
    if maxlen > 0 then emit(base, maxlen, 'enqueued', id, name_of(ARGV[i + 1]), 1) end
  end
  -- unpack() is bounded by Lua's C stack (8000 values): write in pieces.
  local function bulk(cmd, key, list)
    for i = 1, #list, 4000 do
      redis.call(cmd, key, unpack(list, i, math.min(i + 3999, #list)))
    end
  end
  bulk('HSET', K.msg, msgs)
  if #metas > 0 then bulk('HSET', K.meta, metas) end
  if #plain > 0 then bulk('RPUSH', K.ready, plain) end
  if count > 0 then wake(K.wake) end
  redis.call('HINCRBY', K.stats, 'enqueued', count)
  return out
end

local queued = 0
for i = 7, #ARGV, step do
  local status, detail = enqueue_checked(K, now, ARGV[i], ARGV[i + 1], delay, meta_of(i),
    unique_ms, max, overflow, fresh)
  if status == 1 or status == 2 then
    queued = queued + 1
    emit(base, maxlen, 'enqueued', ARGV[i], name_of(ARGV[i + 1]), 1)
  end
  if status == 3 then out[#out + 1] = detail else out[#out + 1] = status end
end
redis.call('HINCRBY', K.stats, 'enqueued', queued)
return out
