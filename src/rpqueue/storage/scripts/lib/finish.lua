-- The body of done-6, shared with finish_take-12: record a finished task
-- and save its result, only for the holder of the current lease.
-- K needs leases, msg, meta, stats, uniq. Returns 1, or 0 when the caller
-- no longer holds the lease (nothing written).
local function finish(K, k_result, id, token, result, ttl)
  local ok, m = holds_lease(K, id, token)
  if not ok then
    return 0
  end
  redis.call('ZREM', K.leases, id)
  forget(K, id, m)
  redis.call('HINCRBY', K.stats, 'done', 1)
  if ttl > 0 then
    redis.call('SET', k_result, result, 'PX', ttl)
  end
  return 1
end
