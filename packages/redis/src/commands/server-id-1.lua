--[[
  server-id: the run id of the server holding KEYS[1]'s slot (on a cluster, the primary that owns
  it now). Read through a key so a cluster client routes it to that primary.

  KEYS[1] any key of the slot
  Returns: the run id.
]]
return string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
