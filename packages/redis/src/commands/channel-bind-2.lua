--[[
  channel-bind: records that an identity binds (or unbinds) a channel, or refreshes a binding it
  still holds (a touch), and returns the channel's signal records, so an identity binding a channel
  late still inherits its live signals.

  KEYS[1] members  HASH    identityId -> "<opMs>|bound" or "<opMs>|unbound"
  KEYS[2] signals  STRING  MessagePack map of the channel's signal records
  ARGV[1] identityId
  ARGV[2] 'bound', 'unbound' or 'touch' (re-add as bound at opMs unless a newer op is recorded)
  ARGV[3] opMs: the time of the binding op (a late, older op never overrides a newer one; at equal
          times `bound` wins, as on the identity side)
  ARGV[4] keep membership until (ms, engine clock): the identity's own state horizon plus a margin,
          so membership lives as long as a live binding to it

  Returns: { applied (1|0), signals (MessagePack)|false }.
]]
--- @include "includes/state"

local membersKey, signalsKey = KEYS[1], KEYS[2]
local identityId, op, opMs, keepUntil = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

local applied = 0
local current = redis.call('HGET', membersKey, identityId)
local currentMs, currentBound = -1, false
if current then
  currentMs = tonumber(string.match(current, '^(%-?%d+)|'))
  currentBound = string.find(current, '|bound', 1, true) ~= nil
end
local state = op == 'unbound' and 'unbound' or 'bound'
if opMs > currentMs or (opMs == currentMs and state == 'bound' and not currentBound) then
  redis.call('HSET', membersKey, identityId, opMs .. '|' .. state)
  applied = 1
end
local expiresAt = redis.call('PEXPIRETIME', membersKey)
if expiresAt == -1 or keepUntil > expiresAt then redis.call('PEXPIREAT', membersKey, math.floor(keepUntil)) end

return { applied, redis.call('GET', signalsKey) or false }
