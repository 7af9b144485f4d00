-- Release a SimpleLock, only if the caller still holds it.
-- KEYS[1] lock  STRING  the lock's key; holds its holder's token
-- ARGV[1] the holder's token
-- Returns 1 released, 0 held by someone else or expired.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
