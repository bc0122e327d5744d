--[[
  outbox-ack: marks a decision sequence as published and removes its outbox entry, unless a newer
  entry has replaced it meanwhile.

  KEYS[1] meta    HASH  seq, published
  KEYS[2] outbox  STRING { "sequence": n, ... } JSON
  ARGV[1] published sequence

  Returns: 1 acknowledged, 0 a newer entry is pending.
]]
local metaKey, outboxKey = KEYS[1], KEYS[2]
local acked = tonumber(ARGV[1])
local published = tonumber(redis.call('HGET', metaKey, 'published') or '0')
if acked > published then redis.call('HSET', metaKey, 'published', tostring(acked)) end
local pending = redis.call('GET', outboxKey)
if pending then
  local n = tonumber(string.match(pending, '"sequence":(%d+)'))
  if n and n > acked then return 0 end
  redis.call('DEL', outboxKey)
end
return 1
