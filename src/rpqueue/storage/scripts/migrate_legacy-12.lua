-- Move a batch of tasks from one rpqueue 0.33 key into this layout.
-- KEYS[1]  ready             LIST  ids waiting to run at the default priority
-- KEYS[2]  msg               HASH  id -> ready time + message JSON
-- KEYS[3]  delayed           ZSET  id -> due time (ms)
-- KEYS[4]  meta              HASH  id -> mutable task state
-- KEYS[5]  wake              LIST  wake token for idle workers
-- KEYS[6]  stats             HASH  queue counters
-- KEYS[7]  leases            ZSET  id -> lease deadline (ms)
-- KEYS[8]  legacy_messages   HASH  0.33: id -> message
-- KEYS[9]  legacy_source     LIST|ZSET  0.33: the key moved from, a LIST
--                            (ARGV[1] 'list') or ZSET ('zset', 'expired')
-- KEYS[10] legacy_delayed    ZSET  0.33: delayed tasks
-- KEYS[11] legacy_invisible  ZSET  0.33: taken tasks, by visibility deadline
-- KEYS[12] prio              ZSET  id -> priority band + sequence
-- ARGV[1] kind of source: 'list', 'zset', or 'expired' (invisible entries,
--         moved only while still past their visibility deadline)
-- ARGV[2] largest message accepted, in bytes (0: no limit)
-- ARGV[3..] groups of 5: id, sha1 of its 0.33 message ('' = an id without
--         a message, to drop), our message, due time in ms (0 = now), meta
-- Returns one status per task: 1 moved, 2 moved replacing our pending task
-- with that id, 3 dropped, -1 changed since read (left alone), -2 a task
-- with that id is running here (left alone).
--@include lib/common.lua
--@include lib/enqueue.lua

local K = {ready = KEYS[1], msg = KEYS[2], delayed = KEYS[3], meta = KEYS[4], wake = KEYS[5],
           stats = KEYS[6], leases = KEYS[7], prio = KEYS[12]}
local kind, limit = ARGV[1], tonumber(ARGV[2])
for i = 5, #ARGV, 5 do
  local too_big = check_size(ARGV[i], limit)
  if too_big then return redis.error_reply('task ' .. ARGV[i - 2] .. ': ' .. too_big) end
end

local now = now_ms()
local function held(id)
  if kind == 'list' then
    return redis.call('LPOS', KEYS[9], id) ~= false
  end
  local score = redis.call('ZSCORE', KEYS[9], id)
  if not score then return false end
  -- 0.33 stamps visibility deadlines with Redis TIME, in seconds.
  return kind ~= 'expired' or tonumber(score) * 1000 < now
end
local function unhold(id)
  if kind == 'list' then
    return redis.call('LREM', KEYS[9], 1, id)
  end
  return redis.call('ZREM', KEYS[9], id)
end

local out, queued = {}, 0
for i = 3, #ARGV, 5 do
  local id, sha, message, due, meta = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4]
  local status = -1
  if sha == '' then
    if redis.call('HEXISTS', KEYS[8], id) == 0 and unhold(id) > 0 then status = 3 end
  elseif redis.call('ZSCORE', KEYS[7], id) then
    status = -2
  else
    local raw = redis.call('HGET', KEYS[8], id)
    if raw and redis.sha1hex(raw) == sha and held(id) then
      local delay = 0
      if due > now then delay = due - now end
      -- Ours is written first: if Redis refuses the write (maxmemory), the
      -- script stops here with the 0.33 task untouched.
      status = enqueue_one(K, now, id, message, delay, meta)
      unhold(id)
      redis.call('HDEL', KEYS[8], id)
      redis.call('ZREM', KEYS[10], id)
      redis.call('ZREM', KEYS[11], id)
      queued = queued + 1
    end
  end
  out[#out + 1] = status
end
if queued > 0 then
  redis.call('HINCRBY', KEYS[6], 'enqueued', queued)
end
return out
