--[[
  identity-read: an identity's state and the run id of the server that holds it, for readers on a
  cluster: a primary that failed over or restarted since the store was verified has lost writes
  perhaps, and its answer must not be trusted (api store-trust.ts). One server needs no such
  check: its restart closes the reader's connection.

  KEYS[1] identity  STRING  the identity's state
  Returns: { state or false, run id }
]]
return { redis.call('GET', KEYS[1]), string.match(redis.call('INFO', 'server'), 'run_id:(%w+)') }
