--[[
  channel-fanout-step: the next page of a channel's pending fan-out (started by channel-signal).
  Reads only (and drops forgotten members on the way): the page's work is done by whoever called,
  and channel-fanout-advance moves the cursor once its output is durable, so a crash in between
  repeats one page, never the fan-out.

  KEYS[1] fan-out  HASH    (channel-signal)
  KEYS[2] signals  STRING  the channel's signal records
  KEYS[3] members  HASH    the channel's members
  ARGV[1] now (ms)
  ARGV[2] members per page (a hint to HSCAN)
  ARGV[3] keep (ms): the late-event window, after which an unbind is dropped

  Returns: false when nothing is pending, else { generation, cursor, next cursor ('0': last page),
  the records to hand on (MessagePack map)|false, trigger (JSON), member, op time, ... }.
]]
--- @include "includes/state"

local fanoutKey, signalsKey, membersKey = KEYS[1], KEYS[2], KEYS[3]
local nowMs, pageSize, keepMs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local job = redis.call('HMGET', fanoutKey, 'g', 'c', 'k', 't')
if not job[1] then return false end
local raw = redis.call('GET', signalsKey)
local signals = raw and expand_signals(cmsgpack.unpack(raw)) or {}
local handed = records_of(signals, cmsgpack.unpack(job[3]))
local out = { job[1], job[2], '0', next(handed) and cmsgpack.pack(pack_signals(handed)) or false, job[4] }
out[3] = member_page(membersKey, job[2], pageSize, nowMs, keepMs, out)
return out
