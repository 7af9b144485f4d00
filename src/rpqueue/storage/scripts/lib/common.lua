-- Shared helpers, spliced into scripts by the loader (--@include).
-- Helpers take key names as arguments (or a table K of them), so scripts
-- with different KEYS layouts can share them.

-- Redis server time in whole milliseconds: every deadline and due time is
-- measured on this one clock, never on a worker's.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Per-task mutable state lives beside the opaque message, so no script ever
-- decodes and re-encodes user JSON (Lua's cjson rewrites numbers and empty
-- arrays). Format:
--   "<vis_ms> <attempts_total> <attempts_left> <use_dead 0|1>[ <priority>[ <unique key>]]"
-- The unique key is last, so it may hold any bytes, spaces included.
local function parse_meta(raw)
  if not raw then return nil end
  local vis, total, left, dead, rest = string.match(raw, '^(%d+) (%d+) (%-?%d+) ([01])(.*)$')
  if not vis then return nil end
  local m = {vis = tonumber(vis), total = tonumber(total), left = tonumber(left),
             dead = dead == '1', prio = 0, ukey = ''}
  if rest ~= '' then
    local prio, ukey = string.match(rest, '^ (%-?%d+)(.*)$')
    if not prio then return nil end
    m.prio = tonumber(prio)
    if ukey ~= '' then m.ukey = string.sub(ukey, 2) end
  end
  return m
end

local function format_meta(m)
  local out = string.format('%d %d %d %s', m.vis, m.total, m.left, m.dead and '1' or '0')
  if m.prio ~= 0 or m.ukey ~= '' then
    out = out .. ' ' .. string.format('%d', m.prio)
    if m.ukey ~= '' then out = out .. ' ' .. m.ukey end
  end
  return out
end

-- The stored message is prefixed with the Redis time (13 digits of ms) at
-- which the task became ready to run, so the age of a queue's next task can
-- be read (aging scheduling) without decoding the message.
local function stamp(ready_ms, message)
  return string.format('%013d:', ready_ms) .. message
end

-- The message as the producer wrote it, and its ready time (nil for a value
-- without the prefix, e.g. one written by hand).
local function unstamp(raw)
  if raw and string.find(raw, '^%d%d%d%d%d%d%d%d%d%d%d%d%d:') then
    return string.sub(raw, 15), tonumber(string.sub(raw, 1, 13))
  end
  return raw, nil
end

-- Tasks with a per-message priority wait in the `prio` ZSET, scored
-- priority * BAND + sequence: lower scores first, FIFO among equals. Tasks
-- at the default priority 0 wait in the `ready` LIST, the cheap common case.
-- Take serves negative bands, then the list, then positive bands.
local BAND = 4294967296

-- Put a task in line: at the back, or at the front of its band (a retry
-- should not wait behind the whole backlog).
local function push_ready(K, id, m, front)
  if m and m.prio ~= 0 then
    local score = m.prio * BAND
    if not front then
      score = score + redis.call('HINCRBY', K.stats, 'seq', 1) % BAND
    end
    redis.call('ZADD', K.prio, score, id)
  elseif front then
    redis.call('LPUSH', K.ready, id)
  else
    redis.call('RPUSH', K.ready, id)
  end
end

-- The next waiting id in priority order, removed from its line (or false).
local function pop_ready(K)
  local first = redis.call('ZRANGE', K.prio, 0, 0, 'WITHSCORES')
  if first[1] and tonumber(first[2]) < 0 then
    redis.call('ZREM', K.prio, first[1])
    return first[1]
  end
  local id = redis.call('LPOP', K.ready)
  if id then return id end
  if first[1] then
    redis.call('ZREM', K.prio, first[1])
    return first[1]
  end
  return false
end

local function waiting_count(K)
  return redis.call('LLEN', K.ready) + redis.call('ZCARD', K.prio)
end

-- Remove an id from whichever waiting line holds it.
local function unlist(K, id)
  if redis.call('ZREM', K.prio, id) == 0 then
    redis.call('LREM', K.ready, 1, id)
  end
end

-- Drop a task's live state. A unique-task claim (K.uniq: key -> "<until_ms>
-- <id>") is released only if this task still holds it.
local function forget(K, id, m)
  redis.call('HDEL', K.msg, id)
  redis.call('HDEL', K.meta, id)
  if m and m.ukey ~= '' and K.uniq then
    local claim = redis.call('HGET', K.uniq, m.ukey)
    if claim and string.match(claim, '^%d+ (.*)$') == id then
      redis.call('HDEL', K.uniq, m.ukey)
    end
  end
end

-- Is a completion report from the holder of the current lease? Tasks with a
-- visibility timeout are fenced by their attempts-left count, which every
-- delivery lowers, so a worker whose lease expired and whose task was handed
-- on cannot finish the newer run.
local function holds_lease(K, id, token)
  if not redis.call('ZSCORE', K.leases, id) then return false, nil end
  local m = parse_meta(redis.call('HGET', K.meta, id))
  if m and m.vis > 0 and tostring(m.left) ~= token then return false, m end
  return true, m
end

-- Move a task from the live keys into the queue's dead letters. The message
-- travels as a string inside the record, untouched. `extra` (a table or nil)
-- replaces fields of the record: an oversized message is kept as a bounded
-- head only (see take.lua), never whole.
local function bury(K, id, m, now, reason, err, used, extra)
  local message = unstamp(redis.call('HGET', K.msg, id))
  if message then
    local record = {id = id, message = message, reason = reason, attempts_used = used, time = now / 1000}
    if err and err ~= '' then record.error = err end
    if m and m.prio ~= 0 then record.priority = m.prio end
    if extra then
      record.message = nil
      for k, v in pairs(extra) do record[k] = v end
    end
    redis.call('HSET', K.deadmsg, id, cjson.encode(record))
    redis.call('ZADD', K.dead, now, id)
    redis.call('HINCRBY', K.stats, 'dead', 1)
  end
  forget(K, id, m)
end

-- Task state records and events (docs/TASK_STATE.md). Their keys are built
-- from the queue's own key prefix, so they share its hash tag and Redis
-- Cluster slot: "<base>state:<id>", "<base>progress:<id>", "<base>events".
-- `opts` is "<keep_ms> <events_maxlen>": how long a finished task's state
-- record lives (0: none) and the bound of the event stream (0: no events).
-- Callers that do not pass it (older producers, other languages) get neither.
local function parse_opts(raw)
  local keep, maxlen = string.match(raw or '', '^(%d+) (%d+)$')
  return tonumber(keep) or 0, tonumber(maxlen) or 0
end

-- The common prefix of a queue's keys, from any one of them (part names
-- hold no ':'; a ':' inside the queue's tag is kept by the greedy match).
local function qbase(key)
  return string.match(key, '^(.*:)[^:]*$')
end

-- The attempt a task is on and how many it may have. A task with a
-- visibility timeout counts down `left` when taken; any other counts down
-- only when retried (fail-11), so its running attempt is one more.
local function attempt_of(m, taken)
  if not m then return 1, 1 end
  if m.vis > 0 and taken then return m.total - m.left, m.total end
  return m.total - m.left + 1, m.total
end

-- The task name inside a message (compact JSON written by message.encode),
-- for events only; '' when it cannot be found.
local function name_of(message)
  if not message then return '' end
  return string.match(message, '"name":"([^"\\]*)"') or ''
end

-- "<state> <attempt> <total> <time_ms>" then, for a failure, a newline and
-- the error record JSON built by the worker.
local function record_state(base, id, state, attempt, total, now, keep, err)
  if keep <= 0 then return end
  local value = state .. ' ' .. attempt .. ' ' .. total .. ' ' .. now
  if err and err ~= '' then value = value .. '\n' .. err end
  redis.call('SET', base .. 'state:' .. id, value, 'PX', keep)
end

-- Append one state change to the queue's bounded event stream.
local function emit(base, maxlen, event, id, name, attempt, extra)
  if maxlen <= 0 then return end
  local cmd = {'XADD', base .. 'events', 'MAXLEN', '~', maxlen, '*', 'event', event,
               'id', id, 'name', name or '', 'attempt', attempt}
  if extra then
    for _, v in ipairs(extra) do cmd[#cmd + 1] = v end
  end
  redis.call(unpack(cmd))
end

-- Leave at most one wake token: it wakes one blocked worker, which passes
-- it on (see take) while work remains.
local function wake(k_wake)
  if redis.call('LLEN', k_wake) == 0 then
    redis.call('RPUSH', k_wake, '1')
  end
end
