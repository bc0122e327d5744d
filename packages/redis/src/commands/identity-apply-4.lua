--[[
  identity-apply: applies one event's mutations to an identity's state, exactly once.

  KEYS[1] seen      ZSET  eventKey -> first-seen ms (dedupe, trimmed to the window)
  KEYS[2] signals   HASH  signalKey -> signal record JSON (see includes/signal.lua)
  KEYS[3] bindings  HASH  channelRef -> "<opMs>|<state>|<binding JSON>"
  KEYS[4] meta      HASH  tenantId, bindingsKnown, seq, published
  ARGV[1] eventKey       "<source>|<eventId>"
  ARGV[2] nowMs
  ARGV[3] dedupe window ms
  ARGV[4] ttl seconds for every key written
  ARGV[5] mutations JSON array; each { t = upsert_signal | clear_signal | clear_ref | bind | unbind, ... }
  ARGV[6] tenantId ('' when none)

  Returns: 1 applied (something may have changed), 0 duplicate (nothing touched).
  Every key written gets its TTL here, in the same script.
]]
--- @include "includes/dedupe"
--- @include "includes/signal"

local seenKey, signalsKey, bindingsKey, metaKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local nowMs, windowMs, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])

if seen_before(seenKey, ARGV[1], nowMs, windowMs, ttl) then
  return 0
end

local function binding_op_ms(ref)
  local v = redis.call('HGET', bindingsKey, ref)
  if not v then return -1 end
  return tonumber(string.match(v, '^(%-?%d+)|'))
end

for _, m in ipairs(cjson.decode(ARGV[5])) do
  if m.t == 'upsert_signal' then
    local merged, changed = merge_raise(redis.call('HGET', signalsKey, m.k), m)
    if changed then redis.call('HSET', signalsKey, m.k, merged) end
  elseif m.t == 'clear_signal' then
    local merged, changed = merge_clear(redis.call('HGET', signalsKey, m.k), m.k, m.code, m.scope, m.ref, m.occurredAtMs)
    if changed then redis.call('HSET', signalsKey, m.k, merged) end
  elseif m.t == 'clear_ref' then
    -- The identity stopped using a channel: signals attached to it no longer concern this identity.
    local all = redis.call('HGETALL', signalsKey)
    for i = 1, #all, 2 do
      local s = cjson.decode(all[i + 1])
      if s.ref == m.ref and s.lastRaisedMs and s.lastRaisedMs <= m.occurredAtMs then
        redis.call('HDEL', signalsKey, all[i])
      end
    end
  elseif m.t == 'bind' or m.t == 'unbind' then
    if m.occurredAtMs >= binding_op_ms(m.ref) then
      local state = (m.t == 'bind') and 'bound' or 'unbound'
      redis.call('HSET', bindingsKey, m.ref, m.occurredAtMs .. '|' .. state .. '|' .. (m.binding or '{}'))
    end
    redis.call('HSET', metaKey, 'bindingsKnown', '1')
  else
    return redis.error_reply('ERR_UNKNOWN_MUTATION ' .. tostring(m.t))
  end
end

prune_signals(signalsKey, nowMs, windowMs)
if ARGV[6] ~= '' then redis.call('HSET', metaKey, 'tenantId', ARGV[6]) end
redis.call('HSETNX', metaKey, 'seq', '0')
for _, k in ipairs({ signalsKey, bindingsKey, metaKey }) do
  if redis.call('EXISTS', k) == 1 then redis.call('EXPIRE', k, ttl) end
end
return 1
