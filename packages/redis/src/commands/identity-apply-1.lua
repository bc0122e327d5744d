--[[
  identity-apply: applies one event's effect to an identity and returns its whole state, in one step.

  KEYS[1] identity  STRING  MessagePack map (includes/state.lua, docs/state.md)
  ARGV[1] identityId (stored in the state and checked on every call: a key never serves two ids)
  ARGV[2] now (ms, the engine's clock)
  ARGV[3] keep (ms): how long cleared and expired records are kept, so an event arriving that late
          still finds them (and a late raise cannot resurrect what was cleared)
  ARGV[4] ttl (ms): the state is forgotten this long after the last event, unless a signal is open-ended
  ARGV[5] MessagePack payload:
          { m = mutations, tenant = string|false, login = {...}|false, touch = true|nil, caps = {...} }
          mutations: { t = 'r' raise | 'c' clear | 'cp' clear by prefix | 'b' bind | 'u' unbind, ... }

  Returns: { changed (1|0), state (MessagePack), login observation (MessagePack)|false }. `changed` is
  1 only when something a decision depends on changed (signals, bindings, tenant, overflow), not for
  bookkeeping (login history). An event that changes nothing (a replay, an older op) leaves the state
  as it was but still counts as activity: the expiry moves. Every write happens at the end, after every check, so a
  failing script changes nothing.
]]
--- @include "includes/state"

local key = KEYS[1]
local identityId, nowMs, keepMs, ttlMs = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local payload = cmsgpack.unpack(ARGV[5])
local caps = payload.caps

local t, raw = load_state(key)
if t and t.i ~= identityId then
  return redis.error_reply('ERR_STATE_OWNER state under this key belongs to another identity')
end
-- What a decision depends on; bookkeeping (login history, touch time) changes nothing to decide.
local function relevant(x)
  return canon({ x.s, x.b, x.k or false, x.t or false, x.x or false })
end
local before = t and relevant(t) or ''
local beforeAll = t and canon(t) or ''
if not t then t = { v = 2, i = identityId, q = 0, p = 0, s = {}, b = {} } end

-- A signal that came through a channel applies only while the identity does not hold that channel
-- as unbound (a fan-out racing an unbind). No record at all still applies: the bind that made this
-- identity a member may simply not have arrived yet, and missing a SIM swap is the worse error.
local function via_ok(via)
  if not via then return true end
  local b = t.b[via]
  return not b or b[B_BOUND] == 1
end

local function count(map)
  local n = 0
  for _ in pairs(map) do n = n + 1 end
  return n
end

-- Over a cap nothing new is stored, and the identity fails closed from then on (`x`): dropping a
-- signal silently could relax a requirement.
local function overflow()
  if not t.x then t.x = nowMs end
end

for _, m in ipairs(payload.m or {}) do
  if m.t == 'r' then
    if via_ok(m.via) then
      local blocked = m.pk and t.s[m.pk] and t.s[m.pk][S_CLEARED] and t.s[m.pk][S_CLEARED] >= m.at
      if not blocked then
        if not t.s[m.k] and count(t.s) >= caps.signals then overflow() else t.s[m.k] = merge_raise(t.s[m.k], m) end
      end
    end
  elseif m.t == 'c' then
    if via_ok(m.via) then
      if not t.s[m.k] and count(t.s) >= caps.signals then overflow() else t.s[m.k] = merge_clear(t.s[m.k], m) end
    end
  elseif m.t == 'cp' then
    -- A clear that names a signal id but no kind clears every kind raised under it, and leaves a
    -- tombstone that blocks a late raise of any of them.
    for k, r in pairs(t.s) do
      if string.sub(k, 1, #m.p) == m.p then t.s[k] = merge_clear(r, { code = r[S_CODE], scope = r[S_SCOPE], ref = r[S_REF], at = m.at }) end
    end
    local pk = m.p .. '*'
    t.s[pk] = merge_clear(t.s[pk], { code = m.code, scope = m.scope, ref = m.ref, at = m.at })
  elseif m.t == 'b' then
    local cur = t.b[m.ref]
    if not cur or m.at > cur[B_OP] or (m.at == cur[B_OP] and cur[B_BOUND] == 0) then
      if not cur and count(t.b) >= caps.bindings then overflow()
      else t.b[m.ref] = { m.at, 1, m.type, m.auth, m.rec, m.bat, m.via or false } end
    end
    t.k = 1
  elseif m.t == 'u' then
    local cur = t.b[m.ref]
    if not cur or m.at > cur[B_OP] then
      t.b[m.ref] = { m.at, 0, cur and cur[B_TYPE] or m.type, 0, 0, 0, false }
      -- What the identity knew through this channel no longer concerns it.
      for k, r in pairs(t.s) do
        if r[S_REF] == m.ref or r[S_VIA] == m.ref then t.s[k] = nil end
      end
    end
    t.k = 1
  else
    return redis.error_reply('ERR_UNKNOWN_MUTATION ' .. tostring(m.t))
  end
end

-- A login: failures per kind (newest `cap` kept: enough to tell whether `cap` happened within the
-- window), and the devices and networks seen at successful logins (the least recent forgotten first).
local observation = false
local login = payload.login
if login then
  local at = math.min(login.at, nowMs)
  t.f = as_map(t.f)
  for _, kind in ipairs(login.kinds) do
    local list, present = t.f[kind] or {}, false
    for _, a in ipairs(list) do if a[2] == login.h then present = true end end
    if not present then table.insert(list, { login.at, login.h }) end
    table.sort(list, function(x, y) return x[1] > y[1] or (x[1] == y[1] and x[2] > y[2]) end)
    while #list > login.cap[kind] do table.remove(list) end
    t.f[kind] = list
  end
  local counts = {}
  for kind, w in pairs(login.windows) do
    local c = 0
    for _, a in ipairs(t.f[kind] or {}) do if a[1] > at - w and a[1] <= at then c = c + 1 end end
    counts[kind] = c
  end
  local function novelty(field, h)
    local list = t[field] or {}
    local kept = {}
    for _, e in ipairs(list) do if e[2] >= at - login.memory then table.insert(kept, e) end end
    local result, found = -1, false
    if #kept > 0 then result = 1 end
    for _, e in ipairs(kept) do if e[1] == h then found = true end end
    if found then result = 0 end
    if h == '' then result = -1 end
    if login.success and h ~= '' then
      local seen = false
      for _, e in ipairs(kept) do if e[1] == h then seen = true; if login.at > e[2] then e[2] = login.at end end end
      if not seen then table.insert(kept, { h, login.at }) end
      table.sort(kept, function(x, y) return x[2] > y[2] or (x[2] == y[2] and x[1] > y[1]) end)
      while #kept > caps.known do table.remove(kept) end
    end
    t[field] = kept
    return result
  end
  observation = cmsgpack.pack({ counts = counts, device = novelty('d', login.device), network = novelty('n', login.network) })
end

if payload.tenant then t.t = payload.tenant end
if payload.touch then t.tc = nowMs end
prune_signals(t.s, nowMs, keepMs)

-- Forgotten `ttl` after this event, but never before a signal it holds can stop mattering, and
-- never while a signal is open-ended ("until cleared" must not age out).
local expireAt = nowMs + ttlMs
for _, r in pairs(t.s) do
  local h = record_horizon(r, keepMs)
  if h == -1 then expireAt = -1; break end
  if h > expireAt then expireAt = h end
end

local decisive = relevant(t) ~= before
if decisive or canon(t) ~= beforeAll then
  save_state(key, t, expireAt)
  return { decisive and 1 or 0, cmsgpack.pack(t), observation }
end
if expireAt == -1 then redis.call('PERSIST', key) else redis.call('PEXPIREAT', key, math.floor(expireAt)) end
return { 0, raw, observation }
