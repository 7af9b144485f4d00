-- The body of done-5, shared with finish_take-10: record a finished task
-- and save its result, only for the holder of the current lease.
-- Returns 1, or 0 when the caller no longer holds the lease (nothing written).
local function finish(k_leases, k_msg, k_meta, k_stats, k_result, id, token, result, ttl)
  if not holds_lease(k_leases, k_meta, id, token) then
    return 0
  end
  redis.call('ZREM', k_leases, id)
  redis.call('HDEL', k_msg, id)
  redis.call('HDEL', k_meta, id)
  redis.call('HINCRBY', k_stats, 'done', 1)
  if ttl > 0 then
    redis.call('SET', k_result, result, 'PX', ttl)
  end
  return 1
end
