--[[
  channel-bind: records that an identity binds (or unbinds) a channel, or that a binding it still
  holds lives on (a touch), and returns the channel's signal records, so an identity binding a
  channel late still inherits its live signals.

  KEYS[1] members  HASH    member -> "<opMs>|<1 bound, 0 unbound>|<keep until ms, -1 never>"
                           (channel-signal-3.lua)
  KEYS[2] signals  STRING  MessagePack map of the channel's signal records
  ARGV[1] member: "=<identityId>", or "<sync account ref>=<identityId>" for a recovery route
  ARGV[2] 'bound', 'unbound' or 'touch'
  ARGV[3] opMs: the time of the binding op. A late, older op never overrides a newer one; at equal
          times `bound` wins, as on the identity side. A touch carries the op time of the binding
          the identity holds, and changes nothing if the channel has recorded a newer op.
  ARGV[4] keep until (ms, engine clock; -1: never): how long the member's identity state lives.
          Bind and unbind only ever extend it (they do not know the identity's state); a touch,
          sent by the identity's owner, sets it.
  ARGV[5] now (ms, engine clock): a member kept until before now belongs to a forgotten state and
          counts as absent.

  Returns: { applied (1|0), signals (MessagePack)|false }.
]]
--- @include "includes/state"

local membersKey, signalsKey = KEYS[1], KEYS[2]
local member, op, opMs, keepUntil, nowMs = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])

local applied = 0
local current = redis.call('HGET', membersKey, member)
local curMs, curBound, curKeep = -1, false, nil
if current then curMs, curBound, curKeep = member_value(current) end
if current and curKeep ~= -1 and curKeep < nowMs then
  -- What a forgotten state left behind: the identity starts afresh on this channel too.
  current, curMs, curBound, curKeep = nil, -1, false, nil
end

local function later(a, b)
  if a == -1 or b == -1 then return -1 end
  return math.max(a, b)
end

if op == 'touch' then
  if opMs >= curMs then
    redis.call('HSET', membersKey, member, opMs .. '|1|' .. keepUntil)
    applied = 1
  end
else
  local bound = op == 'bound'
  if opMs > curMs or (opMs == curMs and bound and not curBound) then
    local keep = curKeep and later(curKeep, keepUntil) or keepUntil
    redis.call('HSET', membersKey, member, opMs .. '|' .. (bound and '1' or '0') .. '|' .. keep)
    applied = 1
  elseif curKeep and later(curKeep, keepUntil) ~= curKeep then
    redis.call('HSET', membersKey, member, curMs .. '|' .. (curBound and '1' or '0') .. '|' .. keepUntil)
  end
end

-- The hash lives as long as its longest-lived member.
local _, _, nowKeep = member_value(redis.call('HGET', membersKey, member))
local expiry = redis.call('PEXPIRETIME', membersKey)
if nowKeep == -1 then
  redis.call('PERSIST', membersKey)
elseif expiry >= 0 then
  extend_until(membersKey, nowKeep)
elseif not current then
  -- No expiry: a hash just made, or one kept for another member that lives forever.
  if redis.call('HLEN', membersKey) == 1 then redis.call('PEXPIREAT', membersKey, math.floor(nowKeep)) end
elseif curKeep == -1 then
  -- This member may have been the one that kept the hash forever: scan for another (rare: an
  -- open-ended signal on this identity has just ended).
  local latest = nowKeep
  for _, v in ipairs(redis.call('HVALS', membersKey)) do
    local _, _, k = member_value(v)
    if k == -1 then latest = -1; break end
    if k > latest then latest = k end
  end
  if latest ~= -1 then redis.call('PEXPIREAT', membersKey, math.floor(latest)) end
end

return { applied, redis.call('GET', signalsKey) or false }
