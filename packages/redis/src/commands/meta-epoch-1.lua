--[[
  meta-epoch: moves the store to a new epoch after data loss was found, so every decision made from
  now on carries a higher sequence than any made before (docs/state.md, data loss).

  KEYS[1] fingerprint  HASH
  ARGV[1] at least this epoch (one past the highest an earlier epoch published)

  Returns: the new epoch, or -2 when there is no fingerprint (the store was lost as a whole).
]]
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return -2 end
local current = tonumber(redis.call('HGET', key, 'epoch') or '0')
local next = math.max(current + 1, tonumber(ARGV[1]))
redis.call('HSET', key, 'epoch', next)
return next
