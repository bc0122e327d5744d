--[[
  progress-record: where stages have got to on partitions, written before they commit those offsets
  to Kafka; a recovery target a partition has now reached is done.

  KEYS[1] progress  HASH  "<stage>|<topic>|<partition>" -> "<next offset>|<ms>"
  KEYS[2] recovery  HASH  "<stage>|<topic>|<partition>" -> offset the partition must reach again
  ARGV[1] ms
  ARGV[2..] field, next offset, field, next offset, ...

  Returns: the number of recovery targets left.
]]
local progressKey, recoveryKey = KEYS[1], KEYS[2]
local atMs = ARGV[1]
for i = 2, #ARGV, 2 do
  local field, nextOffset = ARGV[i], ARGV[i + 1]
  redis.call('HSET', progressKey, field, nextOffset .. '|' .. atMs)
  local target = redis.call('HGET', recoveryKey, field)
  if target and tonumber(nextOffset) >= tonumber(target) then redis.call('HDEL', recoveryKey, field) end
end
return redis.call('HLEN', recoveryKey)
