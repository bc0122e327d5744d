-- Shared: the state of one identity or one channel, its merges, and how it is kept.
--
-- An identity's whole state is ONE key holding a MessagePack map (docs/state.md): small, read and
-- written in one step, atomic by construction. Every merge below is idempotent and independent of
-- the order events arrive in (each field is decided by event times, not arrival), so a redelivered,
-- replayed or reordered event changes nothing it should not: the engine keeps no list of event ids.
--
-- Signal record (array): { code, scope, ref|false, cleared|false, lifted, raises }
--   raises:  the raises still standing, each { since, exp (-1: until cleared), at, eventId|false, attrs }
--   cleared: the time of the latest clear; it lifts every raise up to it (ties included)
--   lifted:  the latest expiry of what the clears lifted or blocked (-1: one lasted until cleared),
--            so the record is kept as long as a replay of such a raise could still be live
-- A record is the set of its raises and its latest clear: merging two records is the union of
-- their raises less those the later clear lifts, whatever the order. Its `since` and expiry are
-- those of its latest episode (standing raises whose lifetimes overlap or touch form one), and its
-- attributes and sources those of that episode's raises.
-- Binding record (array): { opMs, bound(1|0), type, authenticators(bitmask), recovery(bitmask),
--                           boundAtMs, recoverableVia(array of "<type>:<ref>")|false }
--
-- Stored form (pack_state / expand_state): the same arrays, written smaller. A scope or channel
-- type is its index in SCOPES; a raise's expiry and time are offsets from its start (expiry false:
-- until cleared), a binding's boundAt an offset from its op time (false: none). Times are ms since
-- the epoch, 9 bytes each in MessagePack; offsets mostly fit in 1 to 5.

local S_CODE, S_SCOPE, S_REF, S_CLEARED, S_LIFTED, S_RAISES = 1, 2, 3, 4, 5, 6
local R_SINCE, R_EXP, R_AT, R_EV, R_ATTRS = 1, 2, 3, 4, 5
local B_OP, B_BOUND, B_TYPE, B_AUTH, B_REC, B_AT, B_VIA = 1, 2, 3, 4, 5, 6, 7

-- Scopes that name a channel: their signals concern an identity only while it holds the channel.
local CHANNEL_SCOPES = { phone = true, email = true, device = true, sync_account = true }

-- Raises kept per record; past it the two oldest are joined into one (their lifetimes' union).
local MAX_RAISES = 8

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

-- Whether two values are equal, tables by content (keys in any order). Change detection uses this
-- on a second decoding of the stored state: building canon() texts of a whole state costs ~40
-- times more (sorting and formatting every number), and it ran twice per call on the hot path.
local function same(a, b)
  if a == b then return true end
  if type(a) ~= 'table' or type(b) ~= 'table' then return false end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

-- cmsgpack turns an empty Lua table into an empty array; maps must come back as tables either way.
local function as_map(v)
  if type(v) ~= 'table' then return {} end
  return v
end

-- Append only, as the engine's table (records.ts): a stored index is read with it.
local SCOPES = { 'phone', 'email', 'device', 'sync_account', 'identity', 'credential', 'token' }
local SCOPE_IDS = {}
for i, v in ipairs(SCOPES) do SCOPE_IDS[v] = i - 1 end

local function stored_scope(v)
  local id = SCOPE_IDS[v]
  if not id then error('ERR_STATE_FORMAT unknown scope ' .. tostring(v)) end
  return id
end

local function scope_of(v)
  if type(v) ~= 'number' then error('ERR_STATE_FORMAT stored scope is not an index') end
  local scope = SCOPES[v + 1]
  if not scope then error('ERR_STATE_FORMAT unknown stored scope ' .. tostring(v)) end
  return scope
end

local function pack_record(r)
  local raises = {}
  for i, e in ipairs(r[S_RAISES] or {}) do
    local since = e[R_SINCE]
    raises[i] = { since, e[R_EXP] ~= -1 and e[R_EXP] - since or false, e[R_AT] - since, e[R_EV], e[R_ATTRS] }
  end
  return { r[S_CODE], stored_scope(r[S_SCOPE]), r[S_REF], r[S_CLEARED], r[S_LIFTED], raises }
end

local function expand_record(r)
  local raises = {}
  if type(r[S_RAISES]) == 'table' then
    for i, e in ipairs(r[S_RAISES]) do
      local since = e[R_SINCE]
      raises[i] = { since, e[R_EXP] and since + e[R_EXP] or -1, since + e[R_AT], e[R_EV], e[R_ATTRS] }
    end
  end
  return { r[S_CODE], scope_of(r[S_SCOPE]), r[S_REF], r[S_CLEARED], r[S_LIFTED], raises }
end

local function pack_signals(signals)
  local out = {}
  for k, r in pairs(signals) do out[k] = pack_record(r) end
  return out
end

local function expand_signals(stored)
  local out = {}
  for k, r in pairs(as_map(stored)) do out[k] = expand_record(r) end
  return out
end

-- An identity's state in its stored form (a copy: `t` stays as the scripts use it).
local function pack_state(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  out.s = pack_signals(t.s)
  out.b = {}
  for ref, b in pairs(t.b) do
    out.b[ref] = { b[B_OP], b[B_BOUND], stored_scope(b[B_TYPE]), b[B_AUTH], b[B_REC],
      b[B_AT] ~= 0 and b[B_AT] - b[B_OP] or false, b[B_VIA] }
  end
  return cmsgpack.pack(out)
end

local function expand_state(raw)
  local t = cmsgpack.unpack(raw)
  t.s = expand_signals(t.s)
  local bindings = {}
  for ref, b in pairs(as_map(t.b)) do
    bindings[ref] = { b[B_OP], b[B_BOUND], scope_of(b[B_TYPE]), b[B_AUTH], b[B_REC],
      b[B_AT] and b[B_OP] + b[B_AT] or 0, b[B_VIA] }
  end
  t.b = bindings
  return t
end

local function load_state(key)
  local raw = redis.call('GET', key)
  if not raw then return nil, nil end
  return expand_state(raw), raw
end

-- The stored map as it is, for scripts that change only its scalar fields (commit, published).
local function load_stored(key)
  local raw = redis.call('GET', key)
  if not raw then return nil end
  return cmsgpack.unpack(raw)
end

-- The later of two expiries, -1 (until cleared) being the latest.
local function later_exp(a, b)
  if a == -1 or b == -1 then return -1 end
  if a > b then return a end
  return b
end

-- The latest episode of a record's standing raises: { since, exp }, or nil when none stands.
local function latest_episode(raises)
  if type(raises) ~= 'table' or #raises == 0 then return nil end
  local list = {}
  for _, e in ipairs(raises) do table.insert(list, { e[R_SINCE], e[R_EXP] }) end
  table.sort(list, function(a, b) return a[1] < b[1] end)
  local cur = { list[1][1], list[1][2] }
  for i = 2, #list do
    local e = list[i]
    if cur[2] == -1 or e[1] <= cur[2] then cur[2] = later_exp(cur[2], e[2])
    else cur = { e[1], e[2] } end
  end
  return cur
end

local function same_raise(a, b)
  return a[R_SINCE] == b[R_SINCE] and a[R_EXP] == b[R_EXP] and a[R_AT] == b[R_AT] and a[R_EV] == b[R_EV]
end

-- Merges `m` (a record, or a raise or clear as one: { code, scope, ref, cleared, lifted, raises })
-- into `r`. Idempotent, commutative and associative up to MAX_RAISES.
local function merge_record(r, m)
  local out
  if r then
    out = { r[S_CODE], r[S_SCOPE], r[S_REF], r[S_CLEARED], r[S_LIFTED], {} }
    for _, e in ipairs(r[S_RAISES] or {}) do table.insert(out[S_RAISES], e) end
  else
    out = { m.code, m.scope, m.ref or false, false, 0, {} }
  end
  if m.cleared and (not out[S_CLEARED] or m.cleared > out[S_CLEARED]) then out[S_CLEARED] = m.cleared end
  out[S_LIFTED] = later_exp(out[S_LIFTED], m.lifted or 0)
  for _, e in ipairs(m.raises or {}) do
    local present = false
    for _, x in ipairs(out[S_RAISES]) do if same_raise(x, e) then present = true; break end end
    if not present then table.insert(out[S_RAISES], { e[R_SINCE], e[R_EXP], e[R_AT], e[R_EV] or false, e[R_ATTRS] or false }) end
  end
  -- A raise that names no source adds nothing where the same lifetime stands with one.
  local sourced = {}
  for _, e in ipairs(out[S_RAISES]) do
    if e[R_EV] then sourced[e[R_SINCE] .. '|' .. e[R_EXP] .. '|' .. e[R_AT]] = true end
  end
  local kept = {}
  for _, e in ipairs(out[S_RAISES]) do
    if e[R_EV] or not sourced[e[R_SINCE] .. '|' .. e[R_EXP] .. '|' .. e[R_AT]] then table.insert(kept, e) end
  end
  out[S_RAISES] = kept
  -- The latest clear lifts every raise up to its time; it remembers how long they could have lasted.
  if out[S_CLEARED] then
    local standing = {}
    for _, e in ipairs(out[S_RAISES]) do
      if e[R_AT] <= out[S_CLEARED] then out[S_LIFTED] = later_exp(out[S_LIFTED], e[R_EXP])
      else table.insert(standing, e) end
    end
    out[S_RAISES] = standing
  end
  local function older(a, b)
    if a[R_AT] ~= b[R_AT] then return a[R_AT] < b[R_AT] end
    if tostring(a[R_EV]) ~= tostring(b[R_EV]) then return tostring(a[R_EV]) < tostring(b[R_EV]) end
    return canon(a[R_ATTRS]) < canon(b[R_ATTRS])
  end
  -- Bounded: first the raises of earlier episodes go (only a late raise joining two episodes could
  -- have needed them); then the two oldest of the latest episode become one (their union, the
  -- newer's source and attributes), which only a clear between their two times could tell apart.
  table.sort(out[S_RAISES], older)
  while #out[S_RAISES] > MAX_RAISES do
    local episode = latest_episode(out[S_RAISES])
    local dropped = false
    for i, e in ipairs(out[S_RAISES]) do
      if e[R_SINCE] < episode[1] then table.remove(out[S_RAISES], i); dropped = true; break end
    end
    if not dropped then
      local a, b = table.remove(out[S_RAISES], 1), table.remove(out[S_RAISES], 1)
      table.insert(out[S_RAISES], 1, { math.min(a[R_SINCE], b[R_SINCE]), later_exp(a[R_EXP], b[R_EXP]), b[R_AT], b[R_EV], b[R_ATTRS] })
      table.sort(out[S_RAISES], older)
    end
  end
  return out
end

-- A raise mutation ({ since, exp, at, ev, attrs }) as a record to merge.
local function raise_of(m)
  return { code = m.code, scope = m.scope, ref = m.ref, raises = { { m.since, m.exp, m.at, m.ev or false, m.attrs or false } } }
end

local function merge_raise(r, m)
  return merge_record(r, raise_of(m))
end

-- A clear at `m.at`; `m.exp`: the expiry of what it lifted elsewhere (a channel's tombstone handed on).
local function merge_clear(r, m)
  return merge_record(r, { code = m.code, scope = m.scope, ref = m.ref, cleared = m.at, lifted = m.exp or 0 })
end

-- Whether the record `r` blocks a raise at `at` (a clear at or after it).
local function blocks(r, at)
  return r and r[S_CLEARED] and r[S_CLEARED] >= at
end

-- Records that can no longer matter: every raise expired longer than `keep` ago (the longest an
-- event can arrive late and still be applied), and any clear older than that once what it lifted
-- has expired too. The tombstone of a signal "until cleared" is kept as long as the state holding it.
local function prune_signals(signals, nowMs, keepMs)
  for k, r in pairs(signals) do
    local episode = latest_episode(r[S_RAISES])
    local raisesDead = not episode or (episode[2] ~= -1 and episode[2] < nowMs - keepMs)
    local clearDead = not r[S_CLEARED] or (r[S_CLEARED] < nowMs - keepMs and r[S_LIFTED] ~= -1 and r[S_LIFTED] < nowMs - keepMs)
    if raisesDead and clearDead then signals[k] = nil end
  end
end

-- The latest time a record can still matter: -1 while a standing raise lasts until cleared. The
-- tombstone of an open-ended signal does not keep the state alive by itself.
local function record_horizon(r, keepMs)
  local h = 0
  local episode = latest_episode(r[S_RAISES])
  if episode then
    if episode[2] == -1 then return -1 end
    h = episode[2] + keepMs
  end
  if r[S_CLEARED] then
    local c = r[S_CLEARED]
    if r[S_LIFTED] ~= -1 and r[S_LIFTED] > c then c = r[S_LIFTED] end
    if c + keepMs > h then h = c + keepMs end
  end
  return h
end

-- Writes `blob` under `key`, expiring at `expireAt` (ms, engine clock), or never when -1.
-- Expiry is an absolute time from the caller's clock, so a test can move the clock instead of waiting.
-- `blob`: pack_state or cmsgpack.pack(pack_signals(...)).
local function save_state(key, blob, expireAt)
  redis.call('SET', key, blob)
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

-- Applies raises, clears, prefix clears and handed-on records ('m') to a map of signal records.
-- `admit(m)` says whether a mutation concerns this holder at all; `room()` whether a new record
-- still fits (false: `full()` is called and nothing is stored).
local function merge_signals(signals, mutations, admit, room, full)
  local function put(k, fn)
    if not signals[k] and not room() then full() else signals[k] = fn(signals[k]) end
  end
  for _, m in ipairs(mutations) do
    if m.t == 'r' then
      if admit(m) then
        local pt = m.pk and signals[m.pk]
        if blocks(pt, m.at) then
          -- Blocked by a clear naming no kind; remembered by its tombstone, which now lives as long
          -- as this raise could.
          signals[m.pk] = merge_record(pt, { lifted = m.exp })
        else
          put(m.k, function(r) return merge_raise(r, m) end)
        end
      end
    elseif m.t == 'c' then
      if admit(m) then put(m.k, function(r) return merge_clear(r, m) end) end
    elseif m.t == 'm' then
      if admit(m) then
        put(m.k, function(r)
          return merge_record(r, { code = m.code, scope = m.scope, ref = m.ref, cleared = m.cl, lifted = m.lf, raises = m.rs })
        end)
      end
    elseif m.t == 'cp' then
      -- A clear that names a signal id but no kind clears every kind raised under it, and leaves a
      -- tombstone that blocks a late raise of any of them.
      if admit(m) then
        local lifted = 0
        for k, r in pairs(signals) do
          if string.sub(k, 1, #m.p) == m.p and k ~= m.p .. '*' then
            for _, e in ipairs(r[S_RAISES] or {}) do
              if e[R_AT] <= m.at then lifted = later_exp(lifted, e[R_EXP]) end
            end
            signals[k] = merge_clear(r, { code = r[S_CODE], scope = r[S_SCOPE], ref = r[S_REF], at = m.at })
          end
        end
        local pk = m.p .. '*'
        put(pk, function(r) return merge_clear(r, { code = m.code, scope = m.scope, ref = m.ref, at = m.at, exp = lifted }) end)
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

-- One page of a channel's members from `cursor` (HSCAN: every member present for the whole scan is
-- seen at least once; one bound later inherits the signal through channel-bind instead). Appends
-- the bound ones to `out` as member, op time; drops, on the way, those whose identity state has
-- been forgotten and unbinds older than the late-event window (`keepMs`: a bind older still is
-- no longer taken, so the unbind has nothing left to outrank). Returns the next cursor, '0' when
-- the scan is complete. A small hash (listpack) comes back whole whatever the count, which Redis
-- bounds (hash-max-listpack-entries).
local function member_page(membersKey, cursor, count, nowMs, keepMs, out)
  local r = redis.call('HSCAN', membersKey, cursor, 'COUNT', count)
  local page, gone = r[2], {}
  for i = 1, #page, 2 do
    local opMs, bound, keepUntil = member_value(page[i + 1])
    if (keepUntil ~= -1 and keepUntil < nowMs) or (not bound and opMs + keepMs < nowMs) then
      table.insert(gone, page[i])
    elseif bound then
      table.insert(out, page[i])
      table.insert(out, opMs)
    end
  end
  for i = 1, #gone, 1000 do redis.call('HDEL', membersKey, unpack(gone, i, math.min(i + 999, #gone))) end
  return r[1]
end

-- The records a fan-out hands on: the channel's current records under `keys` (those still kept).
local function records_of(signals, keys)
  local out = {}
  for _, k in ipairs(keys) do
    if signals[k] then out[k] = signals[k] end
  end
  return out
end
