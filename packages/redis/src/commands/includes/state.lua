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

-- A raise merged into a record (or a new one). A clear newer than every raise leaves a tombstone, so
-- a late raise cannot resurrect it; a raise newer than the clear reactivates it. Ties: the clear.
local function merge_raise(r, m)
  if r and r[S_CLEARED] and r[S_CLEARED] >= m.at then return r end
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
  if out[S_EXP] ~= -1 and (m.exp == -1 or m.exp > out[S_EXP]) then out[S_EXP] = m.exp end
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

local function merge_clear(r, m)
  if r and r[S_RAISED] and r[S_RAISED] > m.at then return r end
  if r and r[S_CLEARED] and r[S_CLEARED] >= m.at then return r end
  return { m.code, m.scope, m.ref or false, 0, 0, false, m.at, false, {}, 0 }
end

-- Records that can no longer matter: expired signals and tombstones older than `keep` (the longest
-- an event can arrive late and still be applied).
local function prune_signals(signals, nowMs, keepMs)
  for k, r in pairs(signals) do
    local dead = false
    if r[S_CLEARED] and not r[S_RAISED] and r[S_CLEARED] < nowMs - keepMs then dead = true end
    if r[S_RAISED] and r[S_EXP] ~= -1 and r[S_EXP] < nowMs - keepMs then dead = true end
    if dead then signals[k] = nil end
  end
end

-- The latest time a record can still matter: -1 for an open-ended live signal (kept until cleared).
local function record_horizon(r, keepMs)
  if r[S_RAISED] then
    if r[S_EXP] == -1 then return -1 end
    return r[S_EXP] + keepMs
  end
  return (r[S_CLEARED] or 0) + keepMs
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
      local blocked = m.pk and signals[m.pk] and signals[m.pk][S_CLEARED] and signals[m.pk][S_CLEARED] >= m.at
      if not blocked and admit(m) then
        if not signals[m.k] and not room() then full() else signals[m.k] = merge_raise(signals[m.k], m) end
      end
    elseif m.t == 'c' then
      if admit(m) then
        if not signals[m.k] and not room() then full() else signals[m.k] = merge_clear(signals[m.k], m) end
      end
    elseif m.t == 'cp' then
      -- A clear that names a signal id but no kind clears every kind raised under it, and leaves a
      -- tombstone that blocks a late raise of any of them.
      if admit(m) then
        for k, r in pairs(signals) do
          if string.sub(k, 1, #m.p) == m.p then
            signals[k] = merge_clear(r, { code = r[S_CODE], scope = r[S_SCOPE], ref = r[S_REF], at = m.at })
          end
        end
        local pk = m.p .. '*'
        if not signals[pk] and not room() then full()
        else signals[pk] = merge_clear(signals[pk], { code = m.code, scope = m.scope, ref = m.ref, at = m.at }) end
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
