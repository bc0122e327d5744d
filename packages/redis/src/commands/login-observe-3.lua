--[[
  login-observe: records a login attempt and answers the questions the policy's login rules ask:
  how many failures of each kind in the window, and whether the device and network are new.

  KEYS[1] attempts  ZSET  "<kind>|<eventKey>" -> occurredAt ms   (kinds: mfa_fail, fail)
  KEYS[2] devices   HASH  deviceId -> last seen ms
  KEYS[3] networks  HASH  "<country>|<asn>" -> last seen ms
  ARGV[1] eventKey
  ARGV[2] occurredAtMs
  ARGV[3] memory ms: how long devices and networks stay known
  ARGV[4] ttl seconds
  ARGV[5] "<kind>:<window ms>" pairs, comma-separated: each kind is counted within its own window
  ARGV[6] deviceId ('' when unknown)
  ARGV[7] network "<country>|<asn>" ('' when unknown)
  ARGV[8] success: '1' to remember device and network as known
  ARGV[9] kinds this attempt adds to, comma-separated ('' for none)

  Returns: { newDevice, newNetwork, "kind=n"... } where new* is 1 when the identity already has known
  devices (networks) and this one is not among them, 0 when it is, -1 when unknown or no history
  (a first login is not an anomaly).
  Replays are harmless: ZADD of the same member and HSET of the same field change nothing.
]]
local attemptsKey, devicesKey, networksKey = KEYS[1], KEYS[2], KEYS[3]
local eventKey, atMs, memoryMs, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local deviceId, network, success = ARGV[6], ARGV[7], ARGV[8] == '1'

local windows, longest = {}, 0
for kind, w in string.gmatch(ARGV[5], '([^,:]+):(%d+)') do
  windows[kind] = tonumber(w)
  if windows[kind] > longest then longest = windows[kind] end
end
if ARGV[9] ~= '' then
  for kind in string.gmatch(ARGV[9], '[^,]+') do
    redis.call('ZADD', attemptsKey, atMs, kind .. '|' .. eventKey)
  end
end
redis.call('ZREMRANGEBYSCORE', attemptsKey, '-inf', atMs - longest)

local function novelty(key, field)
  if field == '' then return -1 end
  -- Forget what was last seen longer ago than the memory.
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if tonumber(redis.call('HGET', key, f)) < atMs - memoryMs then redis.call('HDEL', key, f) end
  end
  local result
  if redis.call('HLEN', key) == 0 then result = -1
  elseif redis.call('HEXISTS', key, field) == 1 then result = 0
  else result = 1 end
  if success then
    local last = tonumber(redis.call('HGET', key, field) or '0')
    if atMs > last then redis.call('HSET', key, field, atMs) end
  end
  return result
end
local newDevice = novelty(devicesKey, deviceId)
local newNetwork = novelty(networksKey, network)

local out = { newDevice, newNetwork }
for kind, w in pairs(windows) do
  local c = 0
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', attemptsKey, atMs - w, atMs)) do
    if string.sub(member, 1, #kind + 1) == kind .. '|' then c = c + 1 end
  end
  table.insert(out, kind .. '=' .. c)
end
for _, k in ipairs({ attemptsKey, devicesKey, networksKey }) do
  if redis.call('EXISTS', k) == 1 then redis.call('EXPIRE', k, ttl) end
end
return out
