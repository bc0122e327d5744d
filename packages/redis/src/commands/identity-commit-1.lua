--[[
  identity-commit: records that decision `seq` (its digest, its validUntil) was made for an identity,
  if no other decision was recorded since the caller read the state (compare-and-set on the
  sequence). The decision itself is not stored: it is a pure function of the state and the clock,
  so a decision recorded but not yet published is made again from the state when the identity is
  next processed (docs/state.md).

  KEYS[1] identity  STRING  MessagePack map (includes/state.lua)
  ARGV[1] expected current sequence
  ARGV[2] new sequence (greater than the expected one: sequences carry the store's epoch)
  ARGV[3] digest of the decision's substance
  ARGV[4] its validUntil (ms)
  ARGV[5] a tag of the policy it was decided under ('' : none): with it, the engine can tell that an
          event which changed nothing cannot change the decision either, and skip deciding
  ARGV[6] the state version (identity-apply's `sv`) the decision was made from ('' : unknown)

  Returns: 1 recorded, -1 the sequence moved (re-read and decide again), -2 no state.
]]
--- @include "includes/state"

local key = KEYS[1]
local expected, seq, validUntil = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[4])
local t = load_stored(key)
if not t then return -2 end
if (t.q or 0) ~= expected then return -1 end
if seq <= expected then return redis.error_reply('ERR_SEQUENCE new sequence must grow') end
t.q = seq
t.g = ARGV[3]
t.u = validUntil
t.pd = ARGV[5] ~= '' and ARGV[5] or nil
t.dv = tonumber(ARGV[6])
-- KEEPTTL: the state's expiry is the apply's business.
redis.call('SET', key, cmsgpack.pack(t), 'KEEPTTL')
return 1
