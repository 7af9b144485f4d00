-- Shared helpers, spliced into scripts by the loader (--@include).

-- Redis server time in whole milliseconds: every deadline and due time is
-- measured on this one clock, never on a worker's.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Per-task mutable state lives beside the opaque message, so no script ever
-- decodes and re-encodes user JSON (Lua's cjson rewrites numbers and empty
-- arrays). Format: "<vis_ms> <attempts_total> <attempts_left> <use_dead 0|1>".
local function parse_meta(raw)
  if not raw then return nil end
  local vis, total, left, dead = string.match(raw, '^(%d+) (%d+) (%-?%d+) ([01])$')
  if not vis then return nil end
  return {vis = tonumber(vis), total = tonumber(total), left = tonumber(left), dead = dead == '1'}
end

local function format_meta(m)
  return string.format('%d %d %d %s', m.vis, m.total, m.left, m.dead and '1' or '0')
end

-- Is a completion report from the holder of the current lease? Tasks with a
-- visibility timeout are fenced by their attempts-left count, which every
-- delivery lowers, so a worker whose lease expired and whose task was handed
-- on cannot finish the newer run.
local function holds_lease(k_leases, k_meta, id, token)
  if not redis.call('ZSCORE', k_leases, id) then return false, nil end
  local m = parse_meta(redis.call('HGET', k_meta, id))
  if m and m.vis > 0 and tostring(m.left) ~= token then return false, m end
  return true, m
end

-- Move a task from the live keys into the queue's dead letters. The message
-- travels as a string inside the record, untouched.
local function bury(k_msg, k_meta, k_dead, k_deadmsg, k_stats, id, now, reason, err, used)
  local message = redis.call('HGET', k_msg, id)
  if message then
    local record = {id = id, message = message, reason = reason, attempts_used = used, time = now / 1000}
    if err and err ~= '' then record.error = err end
    redis.call('HSET', k_deadmsg, id, cjson.encode(record))
    redis.call('ZADD', k_dead, now, id)
    redis.call('HINCRBY', k_stats, 'dead', 1)
  end
  redis.call('HDEL', k_msg, id)
  redis.call('HDEL', k_meta, id)
end

-- Leave at most one wake token: it wakes one blocked worker, which passes
-- it on (see take) while work remains.
local function wake(k_wake)
  if redis.call('LLEN', k_wake) == 0 then
    redis.call('RPUSH', k_wake, '1')
  end
end
