--[[
  channel-fanout-advance: records that a fan-out page's output is durable, moving the cursor on
  (or ending the fan-out after its last page), only if the fan-out is still the one and at the page
  the caller did: a newer channel event restarts it under a new generation, and a second worker
  that redid the same page after a lease ran out finds the cursor already moved.

  KEYS[1] fan-out  HASH    (channel-signal)
  ARGV[1] generation
  ARGV[2] cursor of the page done
  ARGV[3] next cursor ('0': that was the last page)

  Returns: 0 done, 1 more pages, 2 superseded or gone (another generation, or none), 3 already moved.
]]
local fanoutKey = KEYS[1]
local generation, cursor, after = ARGV[1], ARGV[2], ARGV[3]
local job = redis.call('HMGET', fanoutKey, 'g', 'c')
if job[1] ~= generation then return 2 end
if job[2] ~= cursor then return 3 end
if after == '0' then
  redis.call('DEL', fanoutKey)
  return 0
end
redis.call('HSET', fanoutKey, 'c', after)
return 1
