--[[
  identity-published: Kafka acknowledged decision `seq`; it is no longer owed.

  KEYS[1] identity  STRING  MessagePack map (includes/state.lua)
  ARGV[1] published sequence
  ARGV[2] its digest

  Returns: 1 recorded, 0 an equal or newer one was already recorded, -2 no state.
]]
--- @include "includes/state"

local key = KEYS[1]
local seq = tonumber(ARGV[1])
local t = load_stored(key)
if not t then return -2 end
if (t.p or 0) >= seq then return 0 end
t.p = seq
t.pg = ARGV[2]
redis.call('SET', key, cmsgpack.pack(t), 'KEEPTTL')
return 1
