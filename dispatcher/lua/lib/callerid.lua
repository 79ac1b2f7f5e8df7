-- Caller-ID pools: which of a provider's caller numbers a call goes out from, chosen with
-- the caps in the same script, so two workers never take a caller ID past its cap.
-- G.cid = {sel = 'local' | 'rotate', keep (ms a log is kept), ids = [{id, area, rg, caps =
-- [[limit, ms]]}], regions = {rg = [prefixes]}} (core/callerids.py builds it). Each caller
-- ID has a log of its call starts, cid:<prov>:<id> (zset of grant tokens by time), like the
-- per-number num: logs. A job whose payload names its own `from` keeps it.
-- consider() calls caller_held() before a job is taken and caller_took() after.

local CID_DAY_MS = 86400000

local function cid_key(G, id) return P .. 'cid:' .. G.prov .. ':' .. id end

-- How long until a caller ID is below every cap: the time its oldest call that still
-- counts leaves the window.
local function cid_wait(k, m, s)
  s.wait = 0
  for i, c in ipairs(m.caps or {}) do
    local n = s.caps[i]
    if n >= c[1] then
      local e = redis.call('ZRANGEBYSCORE', k, '(' .. I(NOW - c[2]), '+inf', 'WITHSCORES',
                           'LIMIT', n - c[1], 1)
      s.wait = math.max(s.wait, (tonumber(e[2]) or NOW) + c[2] - NOW, 1)
    end
  end
end

-- One caller ID's counts (last day, each cap's window), read once per call and kept in step
-- with the takes of this call; `wait`: how long until it is below every cap (0: it is).
local function cid_state(G, m)
  G.cid_seen = G.cid_seen or {}
  local s = G.cid_seen[m.id]
  if s then return s end
  local k = cid_key(G, m.id)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', NOW - G.cid.keep)
  s = {day = redis.call('ZCOUNT', k, '(' .. I(NOW - CID_DAY_MS), '+inf'), caps = {}, wait = 0}
  for i, c in ipairs(m.caps or {}) do
    s.caps[i] = redis.call('ZCOUNT', k, '(' .. I(NOW - c[2]), '+inf')
  end
  cid_wait(k, m, s)
  G.cid_seen[m.id] = s
  return s
end

-- The destination's region: the one with the longest prefix of the number.
local function cid_region(G, to)
  local best, found = 0, nil
  for rg, prefixes in pairs(G.cid.regions or {}) do
    for _, p in ipairs(prefixes) do
      if #p > best and to:sub(1, #p) == p then best, found = #p, rg end
    end
  end
  return found
end

-- 'local': 1 same area code, 2 same region, 3 any; 'rotate': all alike.
local function cid_tier(G, m, to, rg)
  if G.cid.sel ~= 'local' then return 1 end
  if m.area ~= '' and to:sub(1, #m.area) == m.area then return 1 end
  if rg and m.rg == rg then return 2 end
  return 3
end

-- Caller IDs taken out of the pool (a flagged answer rate, `dispatcher callerid rest`),
-- read once per call.
local function cid_rested(G)
  if not G.cid_rest then
    G.cid_rest = {}
    for _, id in ipairs(redis.call('SMEMBERS', P .. 'cidrest:' .. G.prov)) do
      G.cid_rest[id] = true
    end
  end
  return G.cid_rest
end

-- The best caller ID below its caps for a call to `to` (then the least used in the last
-- day, then pool order), or nil and how long until one is free. Rested ones are skipped.
local function caller_pick(G, to)
  local rg = G.cid.sel == 'local' and cid_region(G, to) or nil
  local best, bt, bu, wait = nil, 0, 0, nil
  local rested = cid_rested(G)
  for _, m in ipairs(G.cid.ids) do
    local s = not rested[m.id] and cid_state(G, m)
    if not s then  -- rested: as if it did not exist
    elseif s.wait > 0 then
      wait = wait and math.min(wait, s.wait) or s.wait
    else
      local t = cid_tier(G, m, to, rg)
      if not best or t < bt or (t == bt and s.day < bu) then best, bt, bu = m, t, s.day end
    end
  end
  return best, wait or 60000  -- every one rested: look again in a minute
end

local function own_from(raw)
  local ok, d = pcall(cjson.decode, raw or '')
  return ok and type(d) == 'table' and type(d.from) == 'string' and d.from ~= ''
end

-- Before a job is taken: choose its caller ID (G.cid_pick), or send it to wait with reason
-- caller_id_cap when every one is at a cap. True when the job waits.
local function caller_held(id, f, G)
  G.cid_pick, G.cid_keep = nil, nil
  if not G.cid or own_from(f.raw) then return false end
  if f.unsure == '1' then  -- its last call may exist: looked up with the caller ID it used
    G.cid_keep = redis.call('HGET', jkey(id), 'cid') or nil
    if G.cid_keep then return false end
  end
  local m, wait = caller_pick(G, f.to or '')
  if m then
    G.cid_pick = m
    return false
  end
  unput(id, f)
  put(id, f, 'delayed', 'caller_id_cap', NOW + math.max(wait, 1000))
  return true
end

-- After the job is taken: the call start goes into its caller ID's log; the dial is told
-- which caller ID to send (job.cid).
local function caller_took(G, tok, job)
  if G.cid_keep then job.cid = G.cid_keep end
  local m = G.cid_pick
  if not m then return end
  local k = cid_key(G, m.id)
  redis.call('ZADD', k, NOW, tok)
  redis.call('PEXPIRE', k, G.cid.keep + 1000)
  local s = cid_state(G, m)
  s.day = s.day + 1
  for i, _ in ipairs(m.caps or {}) do s.caps[i] = s.caps[i] + 1 end
  cid_wait(k, m, s)
  redis.call('HSET', jkey(job.id), 'cid', m.id)
  job.cid = m.id
  G.cid_pick = nil
end
