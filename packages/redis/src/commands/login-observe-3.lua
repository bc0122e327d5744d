--[[
  login-observe: records a login attempt and answers the questions the policy's login rules ask:
  how many failures of each kind in the window, and whether the device and network are new.

  KEYS[1] attempts  ZSET  "<kind>|<eventKey>" -> occurredAt ms   (kind: push_fail, otp_fail, fail)
  KEYS[2] devices   HASH  deviceId -> last seen ms
  KEYS[3] networks  HASH  "<country>|<asn>" -> last seen ms
  ARGV[1] eventKey
  ARGV[2] occurredAtMs
  ARGV[3] window ms (the longest window any login rule uses)
  ARGV[4] ttl seconds
  ARGV[5] kinds to record, comma-separated ('' for a success)
  ARGV[6] deviceId ('' when unknown)
  ARGV[7] network "<country>|<asn>" ('' when unknown)
  ARGV[8] success: '1' to remember device and network as known

  Returns: { newDevice (1/0/-1 unknown), newNetwork (1/0/-1), count of each kind as "kind=n"... }
  Replays are harmless: ZADD of the same member and HSET of the same field change nothing.
]]
local attemptsKey, devicesKey, networksKey = KEYS[1], KEYS[2], KEYS[3]
local eventKey, atMs, windowMs, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local deviceId, network, success = ARGV[6], ARGV[7], ARGV[8] == '1'

if ARGV[5] ~= '' then
  for kind in string.gmatch(ARGV[5], '[^,]+') do
    redis.call('ZADD', attemptsKey, atMs, kind .. '|' .. eventKey)
  end
end
redis.call('ZREMRANGEBYSCORE', attemptsKey, '-inf', atMs - windowMs)

local newDevice, newNetwork = -1, -1
if deviceId ~= '' then
  newDevice = (redis.call('HEXISTS', devicesKey, deviceId) == 1) and 0 or 1
  if success then redis.call('HSET', devicesKey, deviceId, atMs) end
end
if network ~= '' then
  newNetwork = (redis.call('HEXISTS', networksKey, network) == 1) and 0 or 1
  if success then redis.call('HSET', networksKey, network, atMs) end
end

local counts = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', attemptsKey, atMs - windowMs, atMs)) do
  local kind = string.match(member, '^([^|]+)|')
  counts[kind] = (counts[kind] or 0) + 1
end
local out = { newDevice, newNetwork }
for kind, n in pairs(counts) do table.insert(out, kind .. '=' .. n) end
for _, k in ipairs({ attemptsKey, devicesKey, networksKey }) do
  if redis.call('EXISTS', k) == 1 then redis.call('EXPIRE', k, ttl) end
end
return out
