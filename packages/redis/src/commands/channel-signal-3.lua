--[[
  channel-signal: records a raise or clear against a channel (a phone, mailbox or device) and returns
  the identities bound to it, atomically with channel-bind, so that a signal and a binding racing
  each other always meet: whichever runs second sees the first.

  KEYS[1] signals  STRING  MessagePack map signalKey -> signal record (includes/state.lua)
  KEYS[2] members  HASH    member -> "<opMs>|<1 bound, 0 unbound>|<keep until ms, -1 never>"; a member
                           is "=<identityId>" (bound directly) or "<sync account ref>=<identityId>"
                           (a sync account recoverable through this channel)
  KEYS[3] fan-out  HASH    the fan-out still to do: g generation, c HSCAN cursor of the next page,
                           k MessagePack list of the signal keys to hand on, t the trigger (JSON)
  ARGV[1] now (ms)
  ARGV[2] keep (ms): how long cleared and expired records are kept
  ARGV[3] MessagePack mutations { t = 'r' | 'c' | 'cp', ... } (as identity-apply's)
  ARGV[4] members per page (a hint to HSCAN); 0 records the signal and fans out to nobody (the
          rebuild of a lost store seeds channels and identities alike)
  ARGV[5] the generation a fan-out this call starts is known by (unique per call)
  ARGV[6] the trigger, kept with a fan-out for the pages still to come

  Returns: { changed (1|0), the records to hand on (MessagePack map)|false, the generation of the
  fan-out still pending|false, member, membership op time (ms), member, op time, ... } for the
  first page of members. A change hands the touched records, and those of a fan-out it interrupts,
  to the first page, and leaves the rest as a fan-out in bounded pages (channel-fanout-step), which
  restarts from the first page under the new generation. No change (a redelivered or replayed
  event) hands the touched records to the first page only: the rest of a fan-out is never
  repeated, and a first page a crash cut short is completed. The signals live as long as the
  longest of them can still matter, or until cleared when one is open-ended.
]]
--- @include "includes/state"

local signalsKey, membersKey, fanoutKey = KEYS[1], KEYS[2], KEYS[3]
local nowMs, keepMs = tonumber(ARGV[1]), tonumber(ARGV[2])
local pageSize, generation, trigger = tonumber(ARGV[4]), ARGV[5], ARGV[6]
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

if pageSize == 0 then return { changed and 1 or 0, false, false } end
local job = redis.call('HMGET', fanoutKey, 'g', 'k')
local keys, seen = {}, {}
local function add_key(k)
  if not seen[k] then seen[k] = true; table.insert(keys, k) end
end
if changed and job[2] then
  for _, k in ipairs(cmsgpack.unpack(job[2])) do add_key(k) end
end
for k in pairs(touched) do add_key(k) end
table.sort(keys)
local handed = records_of(signals, keys)

local out = { changed and 1 or 0, next(handed) and cmsgpack.pack(pack_signals(handed)) or false, job[1] or false }
local after = member_page(membersKey, '0', pageSize, nowMs, keepMs, out)
if changed then
  redis.call('DEL', fanoutKey)
  out[3] = false
  if after ~= '0' and #keys > 0 then
    redis.call('HSET', fanoutKey, 'g', generation, 'c', after, 'k', cmsgpack.pack(keys), 't', trigger)
    out[3] = generation
  end
end
return out
