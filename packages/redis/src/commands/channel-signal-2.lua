--[[
  channel-signal: records a raise or clear against a channel (a phone, mailbox or device) and returns
  the identities bound to it, atomically with channel-bind, so that a signal and a binding racing
  each other always meet: whichever runs second sees the first.

  KEYS[1] signals  STRING  MessagePack map signalKey -> signal record (includes/state.lua)
  KEYS[2] members  HASH    identityId -> "<opMs>|bound" or "<opMs>|unbound"
  ARGV[1] now (ms)
  ARGV[2] keep (ms): how long cleared and expired records are kept
  ARGV[3] MessagePack mutations { t = 'r' | 'c' | 'cp', ... } (as identity-apply's)

  Returns: { changed (1|0), identityId... }. The identities come back even when nothing changed (a
  redelivered event), so a fan-out a crash cut short is completed by the redelivery. The signals
  live as long as the longest of them can still matter, or until cleared when one is open-ended.
]]
--- @include "includes/state"

local signalsKey, membersKey = KEYS[1], KEYS[2]
local nowMs, keepMs = tonumber(ARGV[1]), tonumber(ARGV[2])
local raw = redis.call('GET', signalsKey)
local signals = raw and as_map(cmsgpack.unpack(raw)) or {}
local before = canon(signals)

for _, m in ipairs(cmsgpack.unpack(ARGV[3])) do
  if m.t == 'r' then
    local blocked = m.pk and signals[m.pk] and signals[m.pk][S_CLEARED] and signals[m.pk][S_CLEARED] >= m.at
    if not blocked then signals[m.k] = merge_raise(signals[m.k], m) end
  elseif m.t == 'c' then
    signals[m.k] = merge_clear(signals[m.k], m)
  elseif m.t == 'cp' then
    for k, r in pairs(signals) do
      if string.sub(k, 1, #m.p) == m.p then signals[k] = merge_clear(r, { code = r[S_CODE], scope = r[S_SCOPE], ref = r[S_REF], at = m.at }) end
    end
    local pk = m.p .. '*'
    signals[pk] = merge_clear(signals[pk], { code = m.code, scope = m.scope, ref = m.ref, at = m.at })
  else
    return redis.error_reply('ERR_UNKNOWN_MUTATION ' .. tostring(m.t))
  end
end
prune_signals(signals, nowMs, keepMs)

local changed = canon(signals) ~= before
if changed then
  if next(signals) == nil then
    redis.call('DEL', signalsKey)
  else
    local expireAt = nowMs + keepMs
    for _, r in pairs(signals) do
      local h = record_horizon(r, keepMs)
      if h == -1 then expireAt = -1; break end
      if h > expireAt then expireAt = h end
    end
    save_state(signalsKey, signals, expireAt)
  end
end

local out = { changed and 1 or 0 }
local members = redis.call('HGETALL', membersKey)
for i = 1, #members, 2 do
  if string.find(members[i + 1], '|bound', 1, true) then table.insert(out, members[i]) end
end
return out
