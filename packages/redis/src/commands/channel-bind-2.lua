--[[
  channel-bind: records that an identity binds (or unbinds) a channel and returns the channel's
  signal records, so that an identity binding a channel late still inherits its live signals.

  KEYS[1] members  HASH  identityId -> "<opMs>|bound" or "<opMs>|unbound"
  KEYS[2] signals  HASH  signalKey -> signal record JSON
  ARGV[1] identityId
  ARGV[2] 'bound' or 'unbound'
  ARGV[3] occurredAtMs of the binding event (a late, older event never overrides a newer one)
  ARGV[4] ttl seconds for the members key

  Returns: { applied (1/0), signalJson... }. Idempotent: the same event twice writes the same value.
]]
local membersKey, signalsKey = KEYS[1], KEYS[2]
local identityId, op, opMs, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

local applied = 0
local current = redis.call('HGET', membersKey, identityId)
local currentMs = -1
if current then currentMs = tonumber(string.match(current, '^(%-?%d+)|')) end
if opMs >= currentMs then
  redis.call('HSET', membersKey, identityId, opMs .. '|' .. op)
  applied = 1
end
redis.call('EXPIRE', membersKey, ttl)

local out = { applied }
for _, v in ipairs(redis.call('HVALS', signalsKey)) do table.insert(out, v) end
return out
