--[[
  identity-apply: applies one event's effect to an identity and returns its whole state, in one step.

  KEYS[1] identity  STRING  MessagePack map (includes/state.lua, docs/state.md)
  ARGV[1] identityId (stored in the state and checked on every call: a key never serves two ids)
  ARGV[2] now (ms, the engine's clock)
  ARGV[3] keep (ms): how long cleared and expired records are kept, so an event arriving that late
          still finds them (and a late raise cannot resurrect what was cleared)
  ARGV[4] ttl (ms): the state is forgotten this long after the last event, unless a signal is open-ended
  ARGV[5] MessagePack payload:
          { m = mutations, tenant = { id, at }|false, login = {...}|false, touched = ms|nil,
            joined = ms|nil, caps = {...} }
          mutations: { t = 'r' raise | 'c' clear | 'cp' clear by prefix | 'b' bind | 'u' unbind, ... }

  Returns: { changed (1|0), state (MessagePack)|false, login observation (MessagePack)|false,
  horizon, withdrawn routes (MessagePack: { syncRef, channelRef, opMs }...) }. `changed` is 1 only
  when something a decision depends on changed (signals, bindings, tenant, overflow), not for
  bookkeeping (login history). `horizon` is when the state will be forgotten (ms, -1: never; -2:
  nothing stored, as there was nothing to keep). An event that changes nothing (a replay, an older op) leaves the state as it
  was but still counts as activity: the expiry moves. Every write happens at the end, after every
  check, so a failing script changes nothing.
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
-- Forgotten by the engine's clock, whether or not Redis has got round to expiring the key.
if t and t.h and t.h ~= -1 and t.h <= nowMs then t, raw = nil, nil end
local stored_h = t and t.h
-- The state as it was, untouched by what follows (a second decoding), to tell what changed.
local prior = t and expand_state(raw)
-- What a decision depends on; bookkeeping (login history, membership touches) changes nothing to decide.
local function same_relevant(x, y)
  return same(x.s, y.s) and same(x.b, y.b) and (x.k or false) == (y.k or false)
    and (x.t or false) == (y.t or false) and (x.x or false) == (y.x or false)
end
if not t then t = { v = 2, i = identityId, q = 0, p = 0, s = {}, b = {} } end

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

-- Whether the identity holds channel `ref` now: bound directly, or a bound sync account can be
-- recovered through it.
local function held(ref)
  for r, b in pairs(t.b) do
    if b[B_BOUND] == 1 then
      if r == ref then return true end
      if type(b[B_VIA]) == 'table' then
        for _, v in ipairs(b[B_VIA]) do
          if string.sub(v, -#ref - 1) == ':' .. ref then return true end
        end
      end
    end
  end
  return false
end

-- What a channel hands on (`m.mop`: the op time of the membership it came through, or of the bind
-- that inherits it; `m.via`: the sync account route, if any) concerns the identity while it holds
-- the channel. It also applies when the identity's record of the channel (or of the sync account)
-- is older than that membership: the bind that made it a member is still on its way (the channel
-- and identity topics are read concurrently, and missing a SIM swap is the worse error), provided
-- the membership is younger than STATE_TTL (an older one with no record here belongs to a state
-- since forgotten). A record at least as new as the membership that does not hold the channel is
-- the truth: a channel the identity unbound, or a route its sync account no longer has. The
-- identity's own signals about a device (no `mop`) always apply: an unbind lifts them as a clear
-- does (derive.ts).
local function admit(m)
  if not m.ref or not CHANNEL_SCOPES[m.scope] or not m.mop then return true end
  local rec
  if m.via then
    rec = t.b[m.via]
    if rec and rec[B_BOUND] == 1 and type(rec[B_VIA]) == 'table' then
      for _, v in ipairs(rec[B_VIA]) do
        if string.sub(v, -#m.ref - 1) == ':' .. m.ref then return true end
      end
    end
  else
    if held(m.ref) then return true end
    rec = t.b[m.ref]
  end
  if rec and rec[B_OP] >= m.mop then return false end
  return m.mop > nowMs - ttlMs
end

-- Codes of an identity's own signals about its devices: not copies of a channel's records, so
-- letting the device go does not drop them (its unbind lifts them instead).
local own_codes = {}
for _, c in ipairs(payload.own or {}) do own_codes[c] = true end

local mutations = payload.m or {}
-- Channels the identity may have stopped holding: an unbound one, and the routes a sync account lost.
local let_go = {}
-- Recovery routes a sync account no longer has: the owner withdraws their memberships.
local withdrawn = {}
local function withdraw(ref, cur, keep, at)
  if not cur or cur[B_BOUND] ~= 1 or type(cur[B_VIA]) ~= 'table' then return end
  for _, v in ipairs(cur[B_VIA]) do
    local still = false
    for _, w in ipairs(keep or {}) do if w == v then still = true end end
    if not still then
      local route = string.match(v, ':(.*)$')
      table.insert(withdrawn, { ref, route, at })
      let_go[route] = true
    end
  end
end
for _, m in ipairs(mutations) do
  if m.t == 'b' then
    local cur = t.b[m.ref]
    if not cur or m.at > cur[B_OP] or (m.at == cur[B_OP] and cur[B_BOUND] == 0) then
      if not cur and count(t.b) >= caps.bindings then overflow()
      else
        withdraw(m.ref, cur, m.via, m.at)
        t.b[m.ref] = { m.at, 1, m.type, m.auth, m.rec, m.bat, m.via or false }
      end
    end
    t.k = 1
  elseif m.t == 'u' then
    local cur = t.b[m.ref]
    -- An older unbind than the binding on record changes nothing at all (a late or replayed one).
    if not cur or m.at > cur[B_OP] then
      if not cur and count(t.b) >= caps.bindings then overflow()
      else
        withdraw(m.ref, cur, nil, m.at)
        t.b[m.ref] = { m.at, 0, cur and cur[B_TYPE] or m.type, 0, 0, 0, false }
        let_go[m.ref] = true
      end
    end
    t.k = 1
  elseif m.t ~= 'r' and m.t ~= 'c' and m.t ~= 'cp' and m.t ~= 'm' then
    return redis.error_reply('ERR_UNKNOWN_MUTATION ' .. tostring(m.t))
  end
end
-- Whether the event concerns this identity at all: a fan-out it does not take is not activity for
-- it, and must not keep a state alive (docs/state.md, time).
local concerned = payload.login or payload.tenant or payload.touched or payload.joined
local function admit_noting(m)
  local ok = admit(m)
  if ok then concerned = true end
  return ok
end
merge_signals(t.s, mutations, admit_noting, function() return count(t.s) < caps.signals end, overflow)
for _, m in ipairs(mutations) do
  if m.t == 'b' or m.t == 'u' then concerned = true end
end
-- What the identity knew about a channel it let go of, and no longer holds another way, no longer
-- concerns it (after an unbind, or a rebind that dropped a sync account's route).
if next(let_go) ~= nil then
  for k, r in pairs(t.s) do
    if r[S_REF] and let_go[r[S_REF]] and CHANNEL_SCOPES[r[S_SCOPE]] and not own_codes[r[S_CODE]] and not held(r[S_REF]) then
      t.s[k] = nil
    end
  end
end

-- A login: failures per kind (the newest `cap` kept, counts reach at most `cap`), and the devices and networks seen at
-- successful logins (the least recent forgotten first). A kind's threshold is reached at a failure
-- when, counting it, `threshold` failures lie within the window ending at it; every such failure is
-- a trigger, whatever order the failures arrive in (the earliest and latest are returned).
local observation = false
local login = payload.login
if login then
  local at = math.min(login.at, nowMs)
  t.f = as_map(t.f)
  local triggers = {}
  for _, kind in ipairs(login.kinds) do
    local list, present = t.f[kind] or {}, false
    for _, a in ipairs(list) do if a[2] == login.h then present = true end end
    if not present then table.insert(list, { login.at, login.h }) end
    table.sort(list, function(x, y) return x[1] > y[1] or (x[1] == y[1] and x[2] > y[2]) end)
    while #list > login.cap[kind] do table.remove(list) end
    local w, threshold = login.windows[kind], login.thresholds[kind]
    local first, last, most, own = false, false, 0, 0
    for _, f in ipairs(list) do
      local c = 0
      for _, a in ipairs(list) do if a[1] > f[1] - w and a[1] <= f[1] then c = c + 1 end end
      if c >= threshold then
        if not first or f[1] < first then first = f[1] end
        if not last or f[1] > last then last = f[1]; most = c end
        if f[2] == login.h then own = c end
      end
    end
    -- `own`: the count at this login when it is itself one that reached the threshold (0 if not).
    if first then triggers[kind] = { first, last, most, own } end
    t.f[kind] = list
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
  observation = cmsgpack.pack({ triggers = triggers, device = novelty('d', login.device), network = novelty('n', login.network) })
end

-- The tenant of the newest event that names one (equal times: the larger id), so arrival order
-- does not matter.
local tenant = payload.tenant
if tenant and (not t.ta or tenant.at > t.ta or (tenant.at == t.ta and tenant.id > t.t)) then
  t.t = tenant.id
  t.ta = tenant.at
end
-- Until when the channels it holds keep it as a member (-1: forever): a touch sets it; a new
-- membership, written by the router until `joined`, can only bring it closer.
if payload.touched then t.tc = payload.touched end
if payload.joined then
  if not t.tc or t.tc == -1 or (payload.joined ~= -1 and payload.joined < t.tc) then t.tc = payload.joined end
end
prune_signals(t.s, nowMs, keepMs)

-- Forgotten `ttl` after this event, but never before a signal it holds can stop mattering, and
-- never while a signal is open-ended ("until cleared" must not age out).
local expireAt = signals_horizon(t.s, nowMs + ttlMs, keepMs)
t.h = expireAt

local routes = cmsgpack.pack(withdrawn)
if not concerned then
  -- Nothing written: the state (if any) stays as it was, horizon included.
  return { 0, raw or false, observation, raw and (stored_h or -2) or -2, routes }
end
local decisive = not prior or not same_relevant(prior, t)
-- The version of what decisions depend on: a decision records the version it was made from
-- (identity-commit), so a change applied but never decided (a crash in between) is still seen as
-- undecided when its event is delivered again and changes nothing more.
if decisive then t.sv = (t.sv or 0) + 1 end
if decisive or not same(prior, t) then
  local blob = pack_state(t)
  save_state(key, blob, expireAt)
  return { decisive and 1 or 0, blob, observation, expireAt, routes }
end
if expireAt == -1 then redis.call('PERSIST', key) else redis.call('PEXPIREAT', key, math.floor(expireAt)) end
return { 0, raw, observation, expireAt, routes }
