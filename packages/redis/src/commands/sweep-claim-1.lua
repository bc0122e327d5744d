--[[
  sweep-claim: claims identities whose next signal expiry is due, for re-decision.
  A claim does not remove the entry: it pushes it one lease into the future, so if the claimer
  dies before the re-decision lands the entry fires again. The re-decision itself reschedules
  (or removes) the entry, so nothing is done twice while the lease holds and nothing is missed.

  KEYS[1] due  ZSET identityId -> due ms
  ARGV[1] nowMs
  ARGV[2] lease ms
  ARGV[3] max identities per claim

  Returns: the claimed identity ids.
]]
local dueKey = KEYS[1]
local nowMs, leaseMs, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', dueKey, '-inf', nowMs, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  redis.call('ZADD', dueKey, 'XX', nowMs + leaseMs, id)
end
return ids
