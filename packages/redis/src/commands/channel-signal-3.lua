--[[
  channel-signal: records a raise or clear against a channel (phone, mailbox, device, credential)
  and returns the identities bound to it, atomically with channel-bind so that a signal and a
  binding racing each other always meet: whichever runs second sees the first.

  KEYS[1] seen     ZSET  eventKey -> first-seen ms
  KEYS[2] signals  HASH  signalKey -> signal record JSON (see includes/signal.lua)
  KEYS[3] members  HASH  identityId -> "<opMs>|bound" or "<opMs>|unbound"
  ARGV[1] eventKey "<source>|<eventId>"
  ARGV[2] nowMs
  ARGV[3] dedupe window ms
  ARGV[4] ttl seconds for the members and seen keys
  ARGV[5] mutations JSON array of { t = upsert_signal | clear_signal, k, code, scope, ref, ... }

  Returns: { status, identityId... } with status 1 applied, 0 duplicate. On a duplicate the
  identities are still returned, so a redelivered event whose fan-out was cut short completes it.
  The signals key lives as long as its longest-lived signal (at least the dedupe window).
]]
--- @include "includes/dedupe"
--- @include "includes/signal"

local seenKey, signalsKey, membersKey = KEYS[1], KEYS[2], KEYS[3]
local nowMs, windowMs, ttl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local status = 1

if seen_before(seenKey, ARGV[1], nowMs, windowMs, ttl) then
  status = 0
else
  for _, m in ipairs(cjson.decode(ARGV[5])) do
    local merged, changed
    if m.t == 'upsert_signal' then
      merged, changed = merge_raise(redis.call('HGET', signalsKey, m.k), m)
    elseif m.t == 'clear_signal' then
      merged, changed = merge_clear(redis.call('HGET', signalsKey, m.k), m.k, m.code, m.scope, m.ref, m.occurredAtMs)
    else
      return redis.error_reply('ERR_UNKNOWN_MUTATION ' .. tostring(m.t))
    end
    if changed then redis.call('HSET', signalsKey, m.k, merged) end
  end
  prune_signals(signalsKey, nowMs, windowMs)
  -- Keep the channel's signals as long as the longest of them can still matter.
  local keepMs = windowMs
  local all = redis.call('HGETALL', signalsKey)
  for i = 2, #all, 2 do
    local s = cjson.decode(all[i])
    if s.lastRaisedMs then
      if s.expiresAtMs == -1 then keepMs = ttl * 1000
      elseif s.expiresAtMs - nowMs + windowMs > keepMs then keepMs = s.expiresAtMs - nowMs + windowMs end
    end
  end
  if #all > 0 then redis.call('PEXPIRE', signalsKey, math.floor(keepMs)) end
end

local out = { status }
local members = redis.call('HGETALL', membersKey)
for i = 1, #members, 2 do
  if string.find(members[i + 1], '|bound', 1, true) then table.insert(out, members[i]) end
end
return out
