-- Shared: returns true when `eventKey` was already applied within the window; otherwise records it.
-- Trims entries older than the window so the set stays bounded in time.
local function seen_before(seenKey, eventKey, nowMs, windowMs, ttlSec)
  redis.call('ZREMRANGEBYSCORE', seenKey, '-inf', nowMs - windowMs)
  if redis.call('ZSCORE', seenKey, eventKey) then
    return true
  end
  redis.call('ZADD', seenKey, nowMs, eventKey)
  redis.call('EXPIRE', seenKey, ttlSec)
  return false
end
