--[[
  decision-commit: stores a new decision for an identity if nobody else wrote one since we read
  the state (compare-and-set on the sequence), together with its outbox entry (the decision and
  audit record still to be published). The outbox makes publishing survive a crash between the
  Redis write and the Kafka acknowledgement: the next time the identity is processed, the pending
  entry is published first.

  KEYS[1] meta      HASH  seq, published, ...
  KEYS[2] decision  STRING current decision JSON
  KEYS[3] outbox    STRING { decision, audit } JSON awaiting publication
  ARGV[1] expected current seq
  ARGV[2] new decision JSON (its sequence is expected + 1)
  ARGV[3] outbox JSON
  ARGV[4] ttl seconds

  Returns: 1 stored, -1 stale (seq moved: re-read state and decide again).
]]
local metaKey, decisionKey, outboxKey = KEYS[1], KEYS[2], KEYS[3]
local expected, ttl = tonumber(ARGV[1]), tonumber(ARGV[4])
local seq = tonumber(redis.call('HGET', metaKey, 'seq') or '0')
if seq ~= expected then
  return -1
end
redis.call('HSET', metaKey, 'seq', tostring(expected + 1))
redis.call('SET', decisionKey, ARGV[2], 'EX', ttl)
redis.call('SET', outboxKey, ARGV[3], 'EX', ttl)
redis.call('EXPIRE', metaKey, ttl)
return 1
