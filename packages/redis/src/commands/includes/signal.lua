-- Shared: merges one raise or clear into a stored signal record (JSON), order-insensitively.
-- A record is { k, code, scope, ref, sinceMs, expiresAtMs (-1 = until cleared), sourceEventIds,
-- lastRaisedMs, clearedMs?, attributes }. A clear newer than every raise leaves a tombstone so
-- that a late raise cannot resurrect the signal; a raise newer than the clear reactivates it.
local MAX_SOURCES = 16

local function merge_raise(existingJson, m)
  local s
  if existingJson then s = cjson.decode(existingJson) end
  if s and s.clearedMs and s.clearedMs >= m.occurredAtMs then
    return existingJson, false
  end
  if not s or not s.lastRaisedMs then
    s = { k = m.k, code = m.code, scope = m.scope, ref = m.ref, sinceMs = m.sinceMs, expiresAtMs = m.expiresAtMs,
          sourceEventIds = { m.eventId }, lastRaisedMs = m.occurredAtMs, attributes = m.attributes }
    return cjson.encode(s), true
  end
  s.clearedMs = nil
  if m.sinceMs < s.sinceMs then s.sinceMs = m.sinceMs end
  if s.expiresAtMs ~= -1 and (m.expiresAtMs == -1 or m.expiresAtMs > s.expiresAtMs) then
    s.expiresAtMs = m.expiresAtMs
  end
  local present = false
  for _, id in ipairs(s.sourceEventIds) do
    if id == m.eventId then present = true end
  end
  if not present then
    table.insert(s.sourceEventIds, m.eventId)
    while #s.sourceEventIds > MAX_SOURCES do table.remove(s.sourceEventIds, 1) end
  end
  if m.occurredAtMs >= s.lastRaisedMs then
    s.lastRaisedMs = m.occurredAtMs
    s.attributes = m.attributes
  end
  return cjson.encode(s), true
end

local function merge_clear(existingJson, k, code, scope, ref, occurredAtMs)
  local s
  if existingJson then s = cjson.decode(existingJson) end
  if s and s.lastRaisedMs and s.lastRaisedMs > occurredAtMs then
    return existingJson, false
  end
  if s and s.clearedMs and s.clearedMs >= occurredAtMs then
    return existingJson, false
  end
  return cjson.encode({ k = k, code = code, scope = scope, ref = ref, clearedMs = occurredAtMs }), true
end

-- Drops records that can no longer matter: expired signals and tombstones older than the window.
local function prune_signals(signalsKey, nowMs, windowMs)
  local all = redis.call('HGETALL', signalsKey)
  for i = 1, #all, 2 do
    local s = cjson.decode(all[i + 1])
    local dead = false
    if s.clearedMs and not s.lastRaisedMs and s.clearedMs < nowMs - windowMs then dead = true end
    if s.lastRaisedMs and s.expiresAtMs ~= -1 and s.expiresAtMs < nowMs - windowMs then dead = true end
    if dead then redis.call('HDEL', signalsKey, all[i]) end
  end
end
