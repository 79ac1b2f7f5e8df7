-- Provider budgets: halt, cooldown, the exact sliding log of every window, call slots.
-- The log holds one entry per grant (score = grant time). A grant is given only while every
-- window of length W + margin holds fewer than L grants, so any W-second stretch of arrivals
-- at the provider holds at most L even when a request takes up to `margin` to get there.
-- R (the provider's rules): prov, wins = {{limit, ms}, ...}, pace = {{limit, ms}, ...},
-- margin, slot_cap, lease, tracked (calls are followed, so a slot cap can hold).

-- 'run', or 'canary' (halted, probe due: one job may go as the probe), or 'halted' + wait.
local function halt_mode(prov)
  local hk = P .. 'halt:' .. prov
  if redis.call('EXISTS', hk) == 0 then return 'run', 0 end
  local h = hget(hk, {'probe_at', 'canary_until'})
  local pa, cu = tonumber(h.probe_at or '0'), tonumber(h.canary_until or '0')
  if NOW < pa or NOW < cu then return 'halted', math.max(pa - NOW, cu - NOW, 1000) end
  return 'canary', 0
end

local function cooldown_wait(prov)
  local cd = tonumber(redis.call('GET', P .. 'cooldown:' .. prov) or '0')
  if cd > NOW then return cd - NOW end
  return 0
end

-- Limits set at runtime (LIMITS, `dispatcher limits set`) replace the ones the worker read
-- from its file: windows with their pace and margin floor (worked out by the setter), and
-- the call-slot cap. R.file_wins keeps the file's windows so the log keeps their history
-- (a reset must find the grants of the file's longest window still counted). R.ov tells
-- the worker the windows its timing must follow.
local function use_override(R)
  local o = hget(P .. 'limits:' .. R.prov, {'wins', 'pace', 'margin', 'slots'})
  if o.wins then
    R.file_wins = R.wins
    R.wins = cjson.decode(o.wins)
    R.pace = o.pace and cjson.decode(o.pace) or {}
    R.margin = tonumber(o.margin)
    local short = 0
    for _, w in ipairs(R.wins) do
      if short == 0 or w[2] < short then short = w[2] end
    end
    R.ov = {short = short, margin = R.margin}
  end
  if o.slots and R.tracked then R.slot_cap = tonumber(o.slots) end
end

-- The margin in use: the configured floor, or more when a live worker has measured that its
-- requests leave later than that after their grant (see margins.py). Capped at 10 s, which
-- the log always keeps in history.
local MAX_MARGIN = 10000
local function use_margin(R)
  use_override(R)
  local top = redis.call('ZREVRANGE', P .. 'margin:' .. R.prov, 0, 0, 'WITHSCORES')
  if top[2] then R.margin = math.max(R.margin, math.min(tonumber(top[2]), MAX_MARGIN)) end
  return R.margin
end

local function longest_ms(R)
  local longest = 0
  for _, w in ipairs(R.wins) do if w[2] > longest then longest = w[2] end end
  for _, w in ipairs(R.file_wins or {}) do if w[2] > longest then longest = w[2] end end
  return longest + MAX_MARGIN
end

-- Room left in one span of the log for `limit` grants, and if none, how long until a grant
-- leaves it.
local function span_room(log, limit, span)
  local lo = '(' .. I(NOW - span)
  local n = redis.call('ZCOUNT', log, lo, '+inf')
  if n < limit then return limit - n, 0 end
  local e = redis.call('ZRANGEBYSCORE', log, lo, '+inf', 'WITHSCORES', 'LIMIT', n - limit, 1)
  return limit - n, tonumber(e[2]) + span - NOW
end

-- How many grants fit now (every window and every provider-count hint), and if none, how
-- long until one does. share (default 1): the part of each window's limit that may be
-- filled (the reserve: normal and low jobs fill only 1 - reserve_high of it).
local function rate_room(R, share)
  local log = P .. 'rl:' .. R.prov
  redis.call('ZREMRANGEBYSCORE', log, '-inf', NOW - longest_ms(R))
  local room, wait = 1e9, 0
  for _, w in ipairs(R.wins) do
    local limit = share and math.floor(w[1] * share) or w[1]
    local r, wt = span_room(log, limit, w[2] + R.margin)
    room, wait = math.min(room, r), math.max(wait, wt)
    local hv = redis.call('GET', P .. 'hint:' .. R.prov .. ':' .. I(w[2]))
    if hv then
      local left = tonumber(hv)
      room = math.min(room, left)
      if left <= 0 then
        wait = math.max(wait, redis.call('PTTL', P .. 'hint:' .. R.prov .. ':' .. I(w[2])))
      end
    end
  end
  -- the pace inside short windows (limits.py): no margin, no provider hints
  for _, p in ipairs(R.pace or {}) do
    local r, wt = span_room(log, p[1], p[2])
    room, wait = math.min(room, r), math.max(wait, wt)
  end
  return room, wait
end

local function rate_take(R, toks)
  if #toks == 0 then return end
  local log = P .. 'rl:' .. R.prov
  local args = {}
  for _, t in ipairs(toks) do
    args[#args + 1] = NOW
    args[#args + 1] = t
  end
  local added = redis.call('ZADD', log, unpack(args))  -- a replayed token adds nothing
  redis.call('PEXPIRE', log, longest_ms(R) + 1000)
  if added == 0 then return end
  for _, w in ipairs(R.wins) do
    local hint = P .. 'hint:' .. R.prov .. ':' .. I(w[2])
    if redis.call('EXISTS', hint) == 1 then redis.call('DECRBY', hint, added) end
  end
end

local function slot_room(R)
  if not R.slot_cap or R.slot_cap <= 0 then return 1e9 end
  local k = P .. 'slots:' .. R.prov
  redis.call('ZREMRANGEBYSCORE', k, '-inf', NOW)
  local cap = R.slot_cap
  local shrunk = tonumber(redis.call('GET', P .. 'slotcap:' .. R.prov) or '0')
  if shrunk > 0 and shrunk < cap then cap = shrunk end
  return cap - redis.call('ZCARD', k)
end

-- Every non-dial request (poll, lookup) takes one grant the same way.
local function admit_request(R, tok)
  use_margin(R)
  local mode, hw = halt_mode(R.prov)
  if mode == 'halted' and not R.during_halt then return false, hw, 'halted' end
  local cw = cooldown_wait(R.prov)
  if cw > 0 then return false, cw, 'cooldown' end
  local room, wait = rate_room(R)
  if room <= 0 then return false, wait, 'rate' end
  rate_take(R, {tok})
  return true, 0, 'ok'
end
