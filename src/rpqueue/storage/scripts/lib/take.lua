-- The body of take-11, shared with finish_take-12. K names the queue's
-- keys as listed in take-11.lua. Returns {id or false, message or false,
-- token, now_ms, next_ms}.
local function take_next(K, running_ms, limit)
  local now = now_ms()

  -- The earliest due time and lease deadline are read first: in the common
  -- case neither has passed and the range scans below are skipped.
  local first_due = redis.call('ZRANGE', K.delayed, 0, 0, 'WITHSCORES')
  local first_lease = redis.call('ZRANGE', K.leases, 0, 0, 'WITHSCORES')

  local due = {}
  if first_due[2] and tonumber(first_due[2]) <= now then
    due = redis.call('ZRANGEBYSCORE', K.delayed, '-inf', now, 'LIMIT', 0, limit)
  end
  for _, id in ipairs(due) do
    redis.call('ZREM', K.delayed, id)
    -- The meta says which line: a per-message priority waits in `prio`.
    push_ready(K, id, parse_meta(redis.call('HGET', K.meta, id)), false)
  end

  local expired = {}
  if first_lease[2] and tonumber(first_lease[2]) <= now then
    expired = redis.call('ZRANGEBYSCORE', K.leases, '-inf', now, 'LIMIT', 0, limit)
  end
  for _, id in ipairs(expired) do
    redis.call('ZREM', K.leases, id)
    local m = parse_meta(redis.call('HGET', K.meta, id))
    if m and m.vis > 0 and m.left > 0 then
      push_ready(K, id, m, true)
      redis.call('HINCRBY', K.stats, 'retried', 1)
    elseif m and m.dead then
      local reason = 'worker lost while running'
      if m.vis > 0 then reason = 'visibility timeout expired on the last attempt' end
      local used = 1
      if m.vis > 0 then used = m.total - m.left end
      bury(K, id, m, now, reason, nil, used)
    else
      forget(K, id, m)
      redis.call('HINCRBY', K.stats, 'lost', 1)
    end
  end

  local taken, message, token = false, false, '0'
  for _ = 1, limit do
    local id = pop_ready(K)
    if not id then break end
    message = unstamp(redis.call('HGET', K.msg, id))
    -- An id without a message was cancelled or cleared: skip it.
    if message then
      taken = id
      local deadline = now + running_ms
      local m = parse_meta(redis.call('HGET', K.meta, id))
      if m and m.vis > 0 then
        m.left = m.left - 1
        redis.call('HSET', K.meta, id, format_meta(m))
        deadline = now + m.vis
        token = tostring(m.left)
      end
      redis.call('ZADD', K.leases, deadline, id)
      if not first_lease[2] or deadline < tonumber(first_lease[2]) then
        first_lease = {id, deadline}
      end
      if waiting_count(K) > 0 then
        wake(K.wake)
      end
      break
    end
  end

  -- Read again only what the steps above changed.
  if #due > 0 then first_due = redis.call('ZRANGE', K.delayed, 0, 0, 'WITHSCORES') end
  if #expired > 0 then first_lease = redis.call('ZRANGE', K.leases, 0, 0, 'WITHSCORES') end
  local next_ms = -1
  if first_due[2] then next_ms = tonumber(first_due[2]) end
  if first_lease[2] and (next_ms < 0 or tonumber(first_lease[2]) < next_ms) then
    next_ms = tonumber(first_lease[2])
  end
  return {taken, message, token, now, next_ms}
end

-- K for the scripts that take: KEYS as documented in take-11.lua.
local function take_keys()
  return {ready = KEYS[1], msg = KEYS[2], delayed = KEYS[3], leases = KEYS[4], meta = KEYS[5],
          wake = KEYS[6], dead = KEYS[7], deadmsg = KEYS[8], stats = KEYS[9], prio = KEYS[10],
          uniq = KEYS[11]}
end
