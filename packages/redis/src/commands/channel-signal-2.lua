--[[
  channel-signal: records a raise or clear against a channel (a phone, mailbox or device) and returns
  the identities bound to it, atomically with channel-bind, so that a signal and a binding racing
  each other always meet: whichever runs second sees the first.

  KEYS[1] signals  STRING  MessagePack map signalKey -> signal record (includes/state.lua)
  KEYS[2] members  HASH    member -> "<opMs>|<1 bound, 0 unbound>|<keep until ms, -1 never>"; a member
                           is "=<identityId>" (bound directly) or "<sync account ref>=<identityId>"
                           (a sync account recoverable through this channel)
  ARGV[1] now (ms)
  ARGV[2] keep (ms): how long cleared and expired records are kept
  ARGV[3] MessagePack mutations { t = 'r' | 'c' | 'cp', ... } (as identity-apply's)

  Returns: { changed (1|0), the touched records (MessagePack map)|false, member, membership op time
  (ms), member, op time, ... }. The identities come back even when nothing changed (a
  redelivered event), so a fan-out a crash cut short is completed by the redelivery. The signals
  live as long as the longest of them can still matter, or until cleared when one is open-ended.
]]
--- @include "includes/state"

local signalsKey, membersKey = KEYS[1], KEYS[2]
local nowMs, keepMs = tonumber(ARGV[1]), tonumber(ARGV[2])
local raw = redis.call('GET', signalsKey)
local signals = raw and expand_signals(cmsgpack.unpack(raw)) or {}
local prior = raw and expand_signals(cmsgpack.unpack(raw)) or {}

local mutations = cmsgpack.unpack(ARGV[3])
for _, m in ipairs(mutations) do
  if m.t ~= 'r' and m.t ~= 'c' and m.t ~= 'cp' and m.t ~= 'm' then
    return redis.error_reply('ERR_UNKNOWN_MUTATION ' .. tostring(m.t))
  end
end
-- No cap here: refusing a channel signal would hide it from every member. Each member's own cap
-- fails that member closed instead (identity-apply).
merge_signals(signals, mutations, function() return true end, function() return true end, function() end)
prune_signals(signals, nowMs, keepMs)

-- The records the event touched, as they stand now: members merge these, not the event, so each
-- member's copy is the channel's record (episodes and all), whatever order they heard things in.
local touched = {}
for _, m in ipairs(mutations) do
  if m.t == 'cp' then
    for k, r in pairs(signals) do
      if string.sub(k, 1, #m.p) == m.p then touched[k] = r end
    end
  else
    if signals[m.k] then touched[m.k] = signals[m.k] end
    if m.pk and signals[m.pk] then touched[m.pk] = signals[m.pk] end
  end
end

local changed = not same(prior, signals)
if changed then
  if next(signals) == nil then
    redis.call('DEL', signalsKey)
  else
    save_state(signalsKey, cmsgpack.pack(pack_signals(signals)), signals_horizon(signals, nowMs + keepMs, keepMs))
  end
end

-- Members whose identity state has been forgotten (their horizon passed) are dropped on the way.
local out = { changed and 1 or 0, next(touched) and cmsgpack.pack(pack_signals(touched)) or false }
local members = redis.call('HGETALL', membersKey)
local gone = {}
for i = 1, #members, 2 do
  local opMs, bound, keepUntil = member_value(members[i + 1])
  if keepUntil ~= -1 and keepUntil < nowMs then
    table.insert(gone, members[i])
  elseif bound then
    table.insert(out, members[i])
    table.insert(out, opMs)
  end
end
for i = 1, #gone, 1000 do redis.call('HDEL', membersKey, unpack(gone, i, math.min(i + 999, #gone))) end
return out
