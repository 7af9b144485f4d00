-- The body of done-6, shared with finish_take-12: record a finished task
-- and save its result, only for the holder of the current lease.
-- K needs leases, msg, meta, stats, uniq. `keep` and `maxlen` come from the
-- caller's opts (parse_opts); now, the caller's clock reading if it has
-- one. Returns 1, or 0 when the caller no longer holds the lease (nothing
-- written).
local function finish(K, k_result, id, token, result, ttl, keep, maxlen, now)
  local ok, m = holds_lease(K, id, token)
  if not ok then
    return 0
  end
  -- A deletion first: Redis refuses a script at maxmemory when its first
  -- write may grow memory, and a full Redis must still be drained.
  redis.call('ZREM', K.leases, id)
  if keep > 0 or maxlen > 0 then
    local base = qbase(K.meta)
    now = now or now_ms()
    local attempt, total = attempt_of(m, true)
    record_state(base, id, 'succeeded', attempt, total, now, keep, nil)
    if maxlen > 0 then
      emit(base, maxlen, 'succeeded', id, name_of(unstamp(redis.call('HGET', K.msg, id))), attempt)
    end
  end
  forget(K, id, m)
  redis.call('HINCRBY', K.stats, 'done', 1)
  if ttl > 0 then
    redis.call('SET', k_result, result, 'PX', ttl)
  end
  return 1
end
