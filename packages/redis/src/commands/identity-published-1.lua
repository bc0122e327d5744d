--[[
  identity-published: Kafka acknowledged decision `seq`; it is no longer owed.

  KEYS[1] identity  STRING  MessagePack map (includes/state.lua)
  ARGV[1] published sequence
  ARGV[2] its digest

  A newer decision acknowledged before this one means this one may have landed after it (an
  engine that lost the partition and whose send was still retrying): compaction would then keep
  this older one as the identity's last. The newer one is then owed again (the last published is
  recorded as this one), so the identity's owner sends it once more, after.

  Returns: 1 recorded, 0 this one was already recorded, 2 a newer one is owed again, -2 no state.
]]
--- @include "includes/state"

local key = KEYS[1]
local seq = tonumber(ARGV[1])
local t = load_stored(key)
if not t then return -2 end
if (t.p or 0) == seq then return 0 end
if (t.p or 0) > seq then
  t.p = seq
  t.pg = ARGV[2]
  redis.call('SET', key, cmsgpack.pack(t), 'KEEPTTL')
  return 2
end
t.p = seq
t.pg = ARGV[2]
redis.call('SET', key, cmsgpack.pack(t), 'KEEPTTL')
return 1
