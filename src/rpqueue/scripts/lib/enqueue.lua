-- Shared by enqueue and enqueue_many. KEYS as documented in those scripts.

-- Queue one task; returns 1 queued, 2 replaced the pending task with that
-- id, 0 refused because a task with that id is running.
local function enqueue_one(now, id, message, delay, meta)
  if redis.call('ZSCORE', KEYS[7], id) then
    return 0
  end
  local status = 1
  if redis.call('HEXISTS', KEYS[2], id) == 1 then
    -- Replacing a pending task keeps one entry for the id.
    status = 2
    redis.call('ZREM', KEYS[3], id)
    redis.call('LREM', KEYS[1], 0, id)
  end
  redis.call('HSET', KEYS[2], id, message)
  if meta ~= '' then
    redis.call('HSET', KEYS[4], id, meta)
  elseif status == 2 then
    redis.call('HDEL', KEYS[4], id)
  end
  if delay > 0 then
    redis.call('ZADD', KEYS[3], now + delay, id)
    -- A new earliest due time must wake sleepers so they shorten their wait.
    if redis.call('ZRANGE', KEYS[3], 0, 0)[1] == id then
      wake(KEYS[5])
    end
  else
    redis.call('RPUSH', KEYS[1], id)
    wake(KEYS[5])
  end
  return status
end

local function check_size(message, limit)
  if limit > 0 and #message > limit then
    return 'message of ' .. #message .. ' bytes exceeds the limit of ' .. limit .. ' bytes'
  end
  return nil
end
