-- Shared by the scripts that queue tasks. Needs lib/common.lua before it.
-- K names the queue's keys: ready, msg, delayed, meta, wake, stats, leases,
-- prio, and for the checked path (enqueue_checked) conf, uniq, dead, deadmsg.

-- Queue one task; returns 1 queued, 2 replaced the pending task with that
-- id, 0 refused because a task with that id is running. `fresh`: the id was
-- just made by the producer (132 random bits), so it cannot be pending or
-- running and the two look-ups are skipped; `not_running`: the caller has
-- checked the leases already.
local function enqueue_one(K, now, id, message, delay, meta, fresh, not_running)
  local status = 1
  if not fresh then
    if not not_running and redis.call('ZSCORE', K.leases, id) then
      return 0
    end
    if redis.call('HEXISTS', K.msg, id) == 1 then
      -- Replacing a pending task keeps one entry for the id.
      status = 2
      if redis.call('ZREM', K.delayed, id) == 0 then unlist(K, id) end
    end
  end
  local m = nil
  if meta ~= '' then m = parse_meta(meta) end
  local ready_at = now
  if delay > 0 then ready_at = now + delay end
  redis.call('HSET', K.msg, id, stamp(ready_at, message))
  if meta ~= '' then
    redis.call('HSET', K.meta, id, meta)
  elseif status == 2 then
    redis.call('HDEL', K.meta, id)
  end
  if delay > 0 then
    redis.call('ZADD', K.delayed, ready_at, id)
    -- A new earliest due time must wake sleepers so they shorten their wait.
    if redis.call('ZRANGE', K.delayed, 0, 0)[1] == id then
      wake(K.wake)
    end
  else
    push_ready(K, id, m, false)
    wake(K.wake)
  end
  return status
end

local function check_size(message, limit)
  if limit > 0 and #message > limit then
    return 'message of ' .. #message .. ' bytes exceeds the limit of ' .. limit .. ' bytes'
  end
  return nil
end

-- Bounded queues: K.conf holds max_len (0 or absent: unbounded) and
-- overflow ('refuse', the default, or 'drop_oldest'). Returns max, policy
-- or nil.
local function queue_bound(K)
  local c = redis.call('HMGET', K.conf, 'max_len', 'overflow')
  local max = tonumber(c[1])
  if not max or max <= 0 then return nil, nil end
  return max, c[2] or 'refuse'
end

-- What counts against max_len: tasks waiting and delayed, not running ones.
local function queued_count(K)
  return waiting_count(K) + redis.call('ZCARD', K.delayed)
end

local function oldest_in_band(K, score)
  local low = math.floor(tonumber(score) / BAND) * BAND
  return redis.call('ZRANGEBYSCORE', K.prio, low, '+inf', 'LIMIT', 0, 1)[1]
end

-- drop_oldest: dead-letter one queued task to make room. The victim is the
-- longest-waiting task of the least urgent priority band; when nothing
-- waits, the delayed task due last. Returns false when nothing could go.
local function drop_for_room(K, now, max)
  local id = nil
  local last = redis.call('ZRANGE', K.prio, -1, -1, 'WITHSCORES')
  if last[1] and tonumber(last[2]) >= BAND then
    id = oldest_in_band(K, last[2])
    redis.call('ZREM', K.prio, id)
  else
    id = redis.call('LPOP', K.ready)
    if not id and last[1] then
      id = oldest_in_band(K, last[2])
      redis.call('ZREM', K.prio, id)
    end
    if not id then
      id = redis.call('ZRANGE', K.delayed, -1, -1)[1]
      if not id then return false end
      redis.call('ZREM', K.delayed, id)
    end
  end
  bury(K, id, parse_meta(redis.call('HGET', K.meta, id)), now,
    'dropped: queue full (max_len ' .. max .. ')', nil, 0)
  redis.call('HINCRBY', K.stats, 'dropped', 1)
  return true
end

-- Unique tasks: K.uniq maps a unique key to "<until_ms> <id>". A claim
-- holds while it has not expired and its task is still queued or running
-- (its message exists), so a finished task frees its key even if the
-- cleanup on its way out was missed.
local function unique_holder(K, ukey, now)
  local claim = redis.call('HGET', K.uniq, ukey)
  if not claim then return nil end
  local until_ms, holder = string.match(claim, '^(%d+) (.*)$')
  if holder and tonumber(until_ms) > now and redis.call('HEXISTS', K.msg, holder) == 1 then
    return holder
  end
  return nil
end

-- enqueue_one behind the queue's policies. Returns status, detail:
-- 0/1/2 as enqueue_one; 3, holder id when a live task holds the same unique
-- key (nothing written); 4, max_len when the queue is full and refuses.
local function enqueue_checked(K, now, id, message, delay, meta, unique_ms, max, overflow, fresh)
  if not fresh and redis.call('ZSCORE', K.leases, id) then return 0, nil end
  local ukey = ''
  if unique_ms > 0 then
    local m = parse_meta(meta)
    if m then ukey = m.ukey end
    if ukey ~= '' then
      local holder = unique_holder(K, ukey, now)
      if holder and holder ~= id then return 3, holder end
    end
  end
  if max and (fresh or redis.call('HEXISTS', K.msg, id) == 0) then
    local over = queued_count(K) - max + 1
    if over > 0 then
      if overflow ~= 'drop_oldest' then return 4, max end
      -- A lowered max_len is reached over several enqueues, not in one long call.
      for _ = 1, math.min(over, 100) do
        if not drop_for_room(K, now, max) then break end
      end
    end
  end
  local status = enqueue_one(K, now, id, message, delay, meta, fresh, true)
  if status ~= 0 and ukey ~= '' then
    redis.call('HSET', K.uniq, ukey, string.format('%d ', now + unique_ms) .. id)
  end
  return status, nil
end
