-- The body of take-9, shared with finish_take-10. Uses KEYS[1..9] as
-- documented in take-9.lua. Returns {id or false, message or false, token,
-- now_ms, next_ms}.
local function take_next(running_ms, limit)
  local now = now_ms()

  local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    redis.call('ZREM', KEYS[3], id)
    redis.call('RPUSH', KEYS[1], id)
  end

  local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(expired) do
    redis.call('ZREM', KEYS[4], id)
    local m = parse_meta(redis.call('HGET', KEYS[5], id))
    if m and m.vis > 0 and m.left > 0 then
      -- Front of the line: a retry should not wait behind the whole backlog.
      redis.call('LPUSH', KEYS[1], id)
      redis.call('HINCRBY', KEYS[9], 'retried', 1)
    elseif m and m.dead then
      local reason = 'worker lost while running'
      if m.vis > 0 then reason = 'visibility timeout expired on the last attempt' end
      local used = 1
      if m.vis > 0 then used = m.total - m.left end
      bury(KEYS[2], KEYS[5], KEYS[7], KEYS[8], KEYS[9], id, now, reason, nil, used)
    else
      redis.call('HDEL', KEYS[2], id)
      redis.call('HDEL', KEYS[5], id)
      redis.call('HINCRBY', KEYS[9], 'lost', 1)
    end
  end

  local taken, message, token = false, false, '0'
  for _ = 1, limit do
    local id = redis.call('LPOP', KEYS[1])
    if not id then break end
    message = redis.call('HGET', KEYS[2], id)
    -- An id without a message was cancelled or cleared: skip it.
    if message then
      taken = id
      local deadline = now + running_ms
      local m = parse_meta(redis.call('HGET', KEYS[5], id))
      if m and m.vis > 0 then
        m.left = m.left - 1
        redis.call('HSET', KEYS[5], id, format_meta(m))
        deadline = now + m.vis
        token = tostring(m.left)
      end
      redis.call('ZADD', KEYS[4], deadline, id)
      if redis.call('LLEN', KEYS[1]) > 0 then
        wake(KEYS[6])
      end
      break
    end
  end

  local next_ms = -1
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if first[2] then next_ms = tonumber(first[2]) end
  first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  if first[2] and (next_ms < 0 or tonumber(first[2]) < next_ms) then next_ms = tonumber(first[2]) end
  return {taken, message, token, now, next_ms}
end
