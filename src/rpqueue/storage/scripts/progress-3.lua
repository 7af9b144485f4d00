-- Record the progress a running task reports (current_task().progress).
-- KEYS[1] leases   ZSET  id -> lease deadline (ms)
-- KEYS[2] meta     HASH  id -> mutable task state
-- KEYS[3] msg      HASH  id -> ready time + message JSON
-- ARGV[1] id
-- ARGV[2] lease token the take returned
-- ARGV[3] progress JSON {"done", "total", "note", "time"}
-- ARGV[4] opts "<keep_ms> <events_maxlen>" (parse_opts)
-- ARGV[5] done, ARGV[6] total ('' if none), ARGV[7] note: the event's fields
-- Returns 1, or 0 when the caller no longer holds the lease (nothing written).
--@include lib/common.lua

local K = {leases = KEYS[1], meta = KEYS[2], msg = KEYS[3]}
local id = ARGV[1]
local ok, m = holds_lease(K, id, ARGV[2])
if not ok then return 0 end
local keep, maxlen = parse_opts(ARGV[4])
local base = qbase(K.meta)
-- Kept at least an hour after the last report, however short the state
-- records live: a long task's progress must not vanish while it runs.
redis.call('SET', base .. 'progress:' .. id, ARGV[3], 'PX', math.max(keep, 3600000))
if maxlen > 0 then
  local attempt = attempt_of(m, true)
  emit(base, maxlen, 'progress', id, name_of(unstamp(redis.call('HGET', K.msg, id))), attempt,
    {'done', ARGV[5], 'total', ARGV[6], 'note', ARGV[7]})
end
return 1
