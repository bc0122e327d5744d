--[[
  sweep-schedule: sets (or removes) an identity's next re-decision time.

  KEYS[1] due  ZSET identityId -> due ms
  ARGV[1] identityId
  ARGV[2] due ms, or -1 to remove
  ARGV[3] ttl seconds for the index itself (refreshed on every write)

  Returns: 1.
]]
if tonumber(ARGV[2]) < 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
