-- Queue many tasks of one queue in one call, all with the same delay and meta.
-- KEYS: as enqueue-7 (ready, msg, delayed, meta, wake, stats, leases)
-- ARGV[1] delay in ms (<= 0: run now)
-- ARGV[2] meta string, or '' for plain 0/1 tasks
-- ARGV[3] largest message accepted, in bytes (0: no limit)
-- ARGV[4..] id, message, id, message, ...
-- Every size is checked before the first write (scripts do not roll back).
-- Returns a list with one status per task (as enqueue-7).
--@include lib/common.lua
--@include lib/enqueue.lua

local delay, meta, limit = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
for i = 5, #ARGV, 2 do
  local too_big = check_size(ARGV[i], limit)
  if too_big then return redis.error_reply('task ' .. ARGV[i - 1] .. ': ' .. too_big) end
end
local now = now_ms()
local out, queued = {}, 0
for i = 4, #ARGV, 2 do
  local status = enqueue_one(now, ARGV[i], ARGV[i + 1], delay, meta)
  if status ~= 0 then queued = queued + 1 end
  out[#out + 1] = status
end
redis.call('HINCRBY', KEYS[6], 'enqueued', queued)
return out
