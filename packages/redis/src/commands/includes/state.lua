-- Shared: the state of one identity or one channel, its merges, and how it is kept.
--
-- An identity's whole state is ONE key holding a MessagePack map (docs/state.md): small, read and
-- written in one step, atomic by construction. Every merge below is idempotent and independent of
-- the order events arrive in (each field is decided by event times, not arrival), so a redelivered,
-- replayed or reordered event changes nothing it should not: the engine keeps no list of event ids.
--
-- Signal record (array):  { code, scope, ref|false, since, exp(-1 = until cleared), raised|false,
--                           cleared|false, attrs|false, sources, nsources }
-- Binding record (array): { opMs, bound(1|0), type, authenticators(bitmask), recovery(bitmask),
--                           boundAtMs, recoverableVia(array of "<type>:<ref>")|false }

local S_CODE, S_SCOPE, S_REF, S_SINCE, S_EXP, S_RAISED, S_CLEARED, S_ATTRS, S_SRC, S_NSRC =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10
local B_OP, B_BOUND, B_TYPE, B_AUTH, B_REC, B_AT, B_VIA = 1, 2, 3, 4, 5, 6, 7

-- Scopes that name a channel: their signals concern an identity only while it holds the channel.
local CHANNEL_SCOPES = { phone = true, email = true, device = true, sync_account = true }

-- Source event ids kept per signal (newest); `nsources` counts every distinct one seen.
local MAX_SOURCES = 8

-- A canonical text of a value (maps by sorted key), to compare states and attribute sets without
-- depending on the order Lua happens to iterate a table in.
local function canon(v)
  if type(v) ~= 'table' then return type(v) .. ':' .. tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. '=' .. canon(v[k]) end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- cmsgpack turns an empty Lua table into an empty array; maps must come back as tables either way.
local function as_map(v)
  if type(v) ~= 'table' then return {} end
  return v
end

local function load_state(key)
  local raw = redis.call('GET', key)
  if not raw then return nil, nil end
  local t = cmsgpack.unpack(raw)
  t.s = as_map(t.s)
  t.b = as_map(t.b)
  return t, raw
end

-- The later of two expiries, -1 (until cleared) being the latest.
local function later_exp(a, b)
  if a == -1 or b == -1 then return -1 end
  if a > b then return a end
  return b
end

-- A raise merged into a record (or a new one). A clear newer than every raise leaves a tombstone, so
-- a late raise cannot resurrect it; a raise newer than the clear reactivates it. Ties: the clear.
-- A tombstone remembers the latest expiry of what it cleared or blocked (S_EXP), so it is kept as
-- long as such a raise could still be live, and a replay arriving later cannot resurrect it either.
local function merge_raise(r, m)
  if r and r[S_CLEARED] and r[S_CLEARED] >= m.at then
    if r[S_EXP] == later_exp(r[S_EXP], m.exp) then return r end
    local out = {}
    for i = 1, S_NSRC do out[i] = r[i] end
    out[S_EXP] = later_exp(r[S_EXP], m.exp)
    return out
  end
  if not r or not r[S_RAISED] then
    local sources = m.evs or { m.ev }
    local n = #sources
    while #sources > MAX_SOURCES do table.remove(sources, 1) end
    return { m.code, m.scope, m.ref or false, m.since, m.exp, m.at, false, m.attrs or false, sources, n }
  end
  local out = {}
  for i = 1, S_NSRC do out[i] = r[i] end
  out[S_CLEARED] = false
  if m.since < out[S_SINCE] then out[S_SINCE] = m.since end
  out[S_EXP] = later_exp(out[S_EXP], m.exp)
  local sources = {}
  for _, id in ipairs(out[S_SRC]) do table.insert(sources, id) end
  for _, ev in ipairs(m.evs or { m.ev }) do
    local present = false
    for _, id in ipairs(sources) do if id == ev then present = true end end
    if not present then
      table.insert(sources, ev)
      out[S_NSRC] = out[S_NSRC] + 1
    end
  end
  while #sources > MAX_SOURCES do table.remove(sources, 1) end
  out[S_SRC] = sources
  -- The attributes of the newest raise describe the signal; equal times keep the larger, so the
  -- outcome does not depend on arrival order.
  if m.at > out[S_RAISED] or (m.at == out[S_RAISED] and canon(m.attrs or false) > canon(out[S_ATTRS])) then
    out[S_RAISED] = m.at
    out[S_ATTRS] = m.attrs or false
  end
  return out
end

-- A clear merged into a record: it wins over raises up to its time (ties included). `m.exp`, when
-- given, is the expiry of what a prefix clear lifted.
local function merge_clear(r, m)
  if r and r[S_RAISED] and r[S_RAISED] > m.at then return r end
  if r and r[S_CLEARED] and r[S_CLEARED] >= m.at then
    if not m.exp or r[S_EXP] == later_exp(r[S_EXP], m.exp) then return r end
    local out = {}
    for i = 1, S_NSRC do out[i] = r[i] end
    out[S_EXP] = later_exp(r[S_EXP], m.exp)
    return out
  end
  local exp = m.exp or 0
  if r then exp = later_exp(exp, r[S_EXP]) end
  return { m.code, m.scope, m.ref or false, 0, exp, false, m.at, false, {}, 0 }
end

-- Records that can no longer matter: expired signals, and tombstones older than `keep` (the longest
-- an event can arrive late and still be applied) once what they cleared has expired too. A
-- tombstone of a signal "until cleared" is kept as long as the state holding it.
local function prune_signals(signals, nowMs, keepMs)
  for k, r in pairs(signals) do
    local dead = false
    if r[S_RAISED] then
      dead = r[S_EXP] ~= -1 and r[S_EXP] < nowMs - keepMs
    else
      dead = r[S_CLEARED] < nowMs - keepMs and r[S_EXP] ~= -1 and r[S_EXP] < nowMs - keepMs
    end
    if dead then signals[k] = nil end
  end
end

-- The latest time a record can still matter: -1 for an open-ended live signal (kept until cleared).
-- A tombstone of an open-ended signal does not keep the state alive by itself.
local function record_horizon(r, keepMs)
  if r[S_RAISED] then
    if r[S_EXP] == -1 then return -1 end
    return r[S_EXP] + keepMs
  end
  if r[S_EXP] == -1 then return r[S_CLEARED] + keepMs end
  return math.max(r[S_CLEARED], r[S_EXP]) + keepMs
end

-- Writes `t` back under `key`, expiring at `expireAt` (ms, engine clock), or never when -1.
-- Expiry is an absolute time from the caller's clock, so a test can move the clock instead of waiting.
local function save_state(key, t, expireAt)
  redis.call('SET', key, cmsgpack.pack(t))
  if expireAt == -1 then
    redis.call('PERSIST', key)
  else
    redis.call('PEXPIREAT', key, math.floor(expireAt))
  end
end

-- Keeps `key` alive at least until `at` (never shortens a later expiry, never adds one to a key
-- without expiry).
local function extend_until(key, at)
  local current = redis.call('PEXPIRETIME', key)
  if current >= 0 and at > current then redis.call('PEXPIREAT', key, math.floor(at)) end
end

-- Applies raises, clears and prefix clears to a map of signal records. `admit(m)` says whether a
-- raise or clear concerns this holder at all; `room()` whether a new record still fits (false:
-- `full()` is called and nothing is stored).
local function merge_signals(signals, mutations, admit, room, full)
  for _, m in ipairs(mutations) do
    if m.t == 'r' then
      if admit(m) then
        local pt = m.pk and signals[m.pk]
        if pt and pt[S_CLEARED] and pt[S_CLEARED] >= m.at then
          -- Blocked by a clear naming no kind; remembered by its tombstone, which now lives as long
          -- as this raise could.
          signals[m.pk] = merge_raise(pt, m)
        elseif not signals[m.k] and not room() then
          full()
        else
          signals[m.k] = merge_raise(signals[m.k], m)
        end
      end
    elseif m.t == 'c' then
      if admit(m) then
        if not signals[m.k] and not room() then full() else signals[m.k] = merge_clear(signals[m.k], m) end
      end
    elseif m.t == 'cp' then
      -- A clear that names a signal id but no kind clears every kind raised under it, and leaves a
      -- tombstone that blocks a late raise of any of them.
      if admit(m) then
        local lifted = 0
        for k, r in pairs(signals) do
          if string.sub(k, 1, #m.p) == m.p and k ~= m.p .. '*' then
            local before = r[S_RAISED] and r[S_RAISED] <= m.at
            signals[k] = merge_clear(r, { code = r[S_CODE], scope = r[S_SCOPE], ref = r[S_REF], at = m.at })
            if before then lifted = later_exp(lifted, r[S_EXP]) end
          end
        end
        local pk = m.p .. '*'
        if not signals[pk] and not room() then full()
        else signals[pk] = merge_clear(signals[pk], { code = m.code, scope = m.scope, ref = m.ref, at = m.at, exp = lifted }) end
      end
    end
  end
end

-- The time until which a map of signal records must be kept: -1 while one is open-ended.
local function signals_horizon(signals, floor, keepMs)
  local at = floor
  for _, r in pairs(signals) do
    local h = record_horizon(r, keepMs)
    if h == -1 then return -1 end
    if h > at then at = h end
  end
  return at
end

-- A channel member's value: op time, bound, and until when the member's identity state lives.
local function member_value(v)
  local opMs, bound, keepUntil = string.match(v, '^(%-?%d+)|([01])|(%-?%d+)$')
  return tonumber(opMs), bound == '1', tonumber(keepUntil)
end
