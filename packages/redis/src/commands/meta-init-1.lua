--[[
  meta-init: writes the store's fingerprint if there is none, and returns the one in force.

  KEYS[1] fingerprint  HASH  format, prefix, secret, policy, epoch, createdAt (docs/state.md, fingerprint)
  ARGV    field, value, field, value, ...

  Returns: { created (1|0), field, value, ... }: whoever writes first wins; everyone else reads it.
]]
local key = KEYS[1]
if redis.call('EXISTS', key) == 1 then
  local out = { 0 }
  for _, v in ipairs(redis.call('HGETALL', key)) do table.insert(out, v) end
  return out
end
redis.call('HSET', key, unpack(ARGV))
local out = { 1 }
for _, v in ipairs(ARGV) do table.insert(out, v) end
return out
