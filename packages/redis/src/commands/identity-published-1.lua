--[[
  identity-published: Kafka acknowledged decision `seq`; it is no longer owed.

  Compaction keeps the last record of an identity on the decisions topic, so what matters is which
  decision stands last there. An engine whose send outlived its partition can land an older
  decision after a newer one. With the record's offset (the identity's decisions share one
  partition), the decision standing last is tracked: when it is older than the newest one recorded,
  the newest is owed again (the last published is recorded as the one standing last), and the
  identity's owner sends it once more, after. Without an offset, the newest acknowledged counts.

  KEYS[1] identity  STRING  MessagePack map (includes/state.lua)
  ARGV[1] published sequence
  ARGV[2] its digest
  ARGV[3] its offset on the decisions topic, or '' when unknown
  ARGV[4] its partition there: offsets compare within one partition; a decision landed on another
          (partitions were added) starts the tracking over there, so it can never wait forever
          for an offset the new partition will not reach

  Returns: 1 recorded, 0 this one was already recorded, 2 a newer one is owed again, -2 no state.
]]
--- @include "includes/state"

local key = KEYS[1]
local seq = tonumber(ARGV[1])
local offset = tonumber(ARGV[3] ~= '' and ARGV[3] or '-1')
local t = load_stored(key)
if not t then return -2 end
if offset < 0 then
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
end
local partition = tonumber(ARGV[4])
if partition ~= t.pp or offset > (t.po or -1) then
  t.pp = partition
  t.po = offset
  t.ps = seq
  t.psg = ARGV[2]
end
local before = t.p
-- The decision standing last on the topic is what was published, for every reader after compaction.
t.p = t.ps
t.pg = t.psg
redis.call('SET', key, cmsgpack.pack(t), 'KEEPTTL')
if (t.q or 0) > t.ps then return 2 end
if before == t.p then return 0 end
return 1
