--[[
  progress-record: where stages have got to on partitions, written before they commit those offsets
  to Kafka; a recovery target a partition has now reached is done.

  Every primary of a cluster holds a copy (meta.ts, progress shards), and each copy is written only
  while its server is the process the store was verified on: after a restart or a failover, a
  write here would carry progress past the writes that server lost, and hide the loss.

  KEYS[1] progress  HASH  "<stage>|<topic>|<partition>" -> "<next offset>|<ms>"
  KEYS[2] recovery  HASH  "<stage>|<topic>|<partition>" -> offset the partition must reach again
  ARGV[1] the run id the server must have, or "" before the store was first verified
  ARGV[2] ms
  ARGV[3..] field, next offset, field, next offset, ...

  Returns: the number of recovery targets left, or -1 (nothing written) when the server is
  another process than ARGV[1].
]]
local progressKey, recoveryKey = KEYS[1], KEYS[2]
local expected, atMs = ARGV[1], ARGV[2]
if expected ~= '' then
  local runId = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
  if runId ~= expected then return -1 end
end
for i = 3, #ARGV, 2 do
  local field, nextOffset = ARGV[i], ARGV[i + 1]
  redis.call('HSET', progressKey, field, nextOffset .. '|' .. atMs)
  local target = redis.call('HGET', recoveryKey, field)
  if target and tonumber(nextOffset) >= tonumber(target) then redis.call('HDEL', recoveryKey, field) end
end
return redis.call('HLEN', recoveryKey)
