-- A message longer than the limit is never handed out: it is dead-lettered
-- with its first bytes only and its size, so neither Redis nor a worker
-- carries the whole value on (a writer that went around enqueue's check).
local OVERSIZED_HEAD = 1024

local function bury_oversized(K, base, id, now, max_bytes, keep, maxlen)
  local m = parse_meta(redis.call('HGET', K.meta, id))
  local raw = redis.call('HGET', K.msg, id)
  local message = unstamp(raw)
  local size = #message
  local err = 'message of ' .. size .. ' bytes exceeds the limit of ' .. max_bytes .. ' bytes'
  -- attempts_used 1, as for any message refused when taken (malformed, unknown task).
  bury(K, id, m, now, 'oversized message', err, 1,
    {message_head = string.sub(message, 1, OVERSIZED_HEAD), message_size = size,
     truncated = true})
  local attempt, total = attempt_of(m, false)
  record_state(base, id, 'dead', attempt, total, now, keep,
    cjson.encode({type = 'MessageTooLarge', message = err, traceback = '', attempt = attempt,
                  worker = '', time = now / 1000}))
  emit(base, maxlen, 'dead', id, name_of(string.sub(message, 1, OVERSIZED_HEAD)), attempt)
end

-- A task whose worker vanished (its lease expired): the record a handle
-- shows for the attempt that was lost.
local function lost_error(reason, attempt, now)
  return cjson.encode({type = 'WorkerLost', message = reason, traceback = '',
                       attempt = attempt, worker = '', time = now / 1000})
end

-- The body of take-11, shared with finish_take-12. K names the queue's
-- keys as listed in take-11.lua; keep and maxlen come from parse_opts;
-- max_bytes bounds the message returned (0: no bound); now: the caller's
-- clock reading, if it has one. Returns {id or false, message or false,
-- token, now_ms, next_ms}.
local function take_next(K, running_ms, limit, keep, maxlen, max_bytes, now)
  now = now or now_ms()
  -- Built only when a state record or an event is written (rare here).
  local base = nil

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
    local attempt, total = attempt_of(m, true)
    base = base or qbase(K.meta)
    local name = ''
    if maxlen > 0 then name = name_of(unstamp(redis.call('HGET', K.msg, id))) end
    if m and m.vis > 0 and m.left > 0 then
      push_ready(K, id, m, true)
      redis.call('HINCRBY', K.stats, 'retried', 1)
      record_state(base, id, 'retrying', attempt, total, now, keep,
        lost_error('visibility timeout expired (worker lost or too slow)', attempt, now))
      emit(base, maxlen, 'retrying', id, name, attempt)
    elseif m and m.dead then
      local reason = 'worker lost while running'
      if m.vis > 0 then reason = 'visibility timeout expired on the last attempt' end
      bury(K, id, m, now, reason, nil, attempt)
      record_state(base, id, 'dead', attempt, total, now, keep, lost_error(reason, attempt, now))
      emit(base, maxlen, 'dead', id, name, attempt)
    else
      forget(K, id, m)
      redis.call('HINCRBY', K.stats, 'lost', 1)
      record_state(base, id, 'failed', attempt, total, now, keep,
        lost_error('worker lost while running', attempt, now))
      emit(base, maxlen, 'failed', id, name, attempt)
    end
  end

  local taken, message, token = false, false, '0'
  for _ = 1, limit do
    local id = pop_ready(K)
    if not id then break end
    -- One read serves both the size check (the stamp is 14 bytes) and the
    -- take: an HSTRLEN first would cost a command per take, and saves no
    -- copy, as bury_oversized reads an oversized value whole anyway.
    local raw = redis.call('HGET', K.msg, id)
    if raw and max_bytes > 0 and #raw > max_bytes + 14 then
      bury_oversized(K, qbase(K.meta), id, now, max_bytes, keep, maxlen)
      message = false
    else
      message = unstamp(raw)
    end
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
      if maxlen > 0 then
        emit(qbase(K.meta), maxlen, 'started', id, name_of(message), (attempt_of(m, true)))
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
