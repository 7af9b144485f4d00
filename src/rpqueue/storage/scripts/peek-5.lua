-- How long the next task of a queue has been waiting (aging scheduling).
-- Reads only.
-- KEYS[1] ready    LIST  ids waiting to run at the default priority
-- KEYS[2] prio     ZSET  id -> priority band + sequence
-- KEYS[3] msg      HASH  id -> ready time + message JSON
-- KEYS[4] delayed  ZSET  id -> due time (ms)
-- KEYS[5] leases   ZSET  id -> lease deadline (ms)
-- Returns {now_ms, since_ms}: since_ms is the Redis time since which the
-- task a take would return has been ready (a due delayed task counts from
-- its due time, an expired lease from its deadline), -1 when none waits.
--@include lib/common.lua

local now = now_ms()
local since = -1
local function consider(t)
  if t and (since < 0 or t < since) then since = t end
end
local function ready_since(id)
  local _, t = unstamp(redis.call('HGET', KEYS[3], id))
  return t
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if first[1] and tonumber(first[2]) < 0 then
  consider(ready_since(first[1]) or now)
else
  -- The list head may be a cancelled id (no message): look a little further.
  local found = false
  for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, 9)) do
    local t = ready_since(id)
    if t then consider(t); found = true; break end
  end
  if not found and first[1] then consider(ready_since(first[1]) or now) end
end
local due = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
if due[2] and tonumber(due[2]) <= now then consider(tonumber(due[2])) end
local lapsed = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
if lapsed[2] and tonumber(lapsed[2]) <= now then consider(tonumber(lapsed[2])) end
return {now, since}
