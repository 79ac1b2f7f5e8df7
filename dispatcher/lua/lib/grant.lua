-- Granting dials: the provider's budget is given to the best ready job, across every worker.
-- G: R fields (prov, wins, margin, slot_cap, lease) plus k (most grants wanted), consumer,
--    reserve (share of each window kept for high priority), cid (caller-ID pool, see
--    lib/callerid.lua),
--    tok (unique per call), caps = {{limit, ms}} per-number caps (default policy),
--    caps_keep (ms a number's log is kept), camps = {name = {share, cap, caps}}, dnc (bool).

local SKIP_LIMIT = 500  -- stale, cancelled, blocked or capped ids skipped in one call, at most

-- Strict priority, then the campaign with the lowest pass (stride scheduling: a grant adds
-- 1/share to its campaign's pass, so campaigns get grants in proportion to their shares).
-- Paused campaigns and campaigns at their own call cap are skipped.
local function usable(c, G)
  if c ~= '~' and redis.call('SISMEMBER', P .. 'paused', c) == 1 then return false end
  local cfg = G.camps[c]
  if cfg and cfg.cap then
    local k = P .. 'cslots:' .. c
    redis.call('ZREMRANGEBYSCORE', k, '-inf', NOW)
    if redis.call('ZCARD', k) >= cfg.cap then return false end
  end
  return true
end

-- Up to n ids from the head of one campaign's ready list; its pass grows by one grant's worth
-- for each.
local function pop_ready(G, prio, c, n)
  local rq, rk = rq_key(G.prov, prio), ready_key(G.prov, prio, c)
  local ids = redis.call('LPOP', rk, n)
  if not ids then
    redis.call('ZREM', rq, c)
    return {}
  end
  local cfg = G.camps[c]
  redis.call('ZINCRBY', rq, #ids / ((cfg and cfg.share) or 1), c)
  if #ids < n or redis.call('EXISTS', rk) == 0 then redis.call('ZREM', rq, c) end
  return ids
end

-- A campaign that cannot be served (paused, at its call cap) earns no credit meanwhile: its
-- pass is lifted to the pass of the campaign served instead, so on resuming it shares the
-- budget by its weight again instead of taking every grant until it has caught up.
local function lift(rq, skipped, pass)
  for _, c in ipairs(skipped) do redis.call('ZADD', rq, 'XX', 'GT', pass, c) end
end

-- The next ids to consider (at most n): the best ready job. A campaign alone at its priority
-- and without a call cap of its own gives a run of them in one LPOP, since no other
-- campaign's turn can come in between.
local function pick(G, n)
  for _, prio in ipairs(PRIOS) do
    local m = math.min(n, reserve_room(G, prio))
    local rq = rq_key(G.prov, prio)
    local all, skipped = {}, {}
    if m > 0 then all = redis.call('ZRANGE', rq, 0, -1, 'WITHSCORES') end
    for i = 1, #all, 2 do
      local c = all[i]
      if usable(c, G) then
        local cfg = G.camps[c]
        local ids = pop_ready(G, prio, c, (#all == 2 and not (cfg and cfg.cap)) and m or 1)
        if #ids > 0 then
          lift(rq, skipped, all[i + 1])
          return ids
        end
      else
        table.insert(skipped, c)
      end
    end
  end
  return {}
end

local function canary_pick(G)
  local first = redis.call('ZRANGE', P .. 'parked:' .. G.prov, 0, 0)
  if not first[1] then return {} end
  redis.call('HSET', P .. 'halt:' .. G.prov, 'canary_until', NOW + 60000, 'canary', first[1])
  return {first[1]}
end

-- Per-number caps: one log of call starts per number, across jobs and campaigns.
local function number_wait(to, caps)
  if not caps or #caps == 0 or not to or to == '' then return 0 end
  local k = P .. 'num:' .. to
  local wait = 0
  for _, c in ipairs(caps) do
    local lo = '(' .. I(NOW - c[2])
    local n = redis.call('ZCOUNT', k, lo, '+inf')
    if n >= c[1] then
      local e = redis.call('ZRANGEBYSCORE', k, lo, '+inf', 'WITHSCORES', 'LIMIT', n - c[1], 1)
      wait = math.max(wait, tonumber(e[2]) + c[2] - NOW)
    end
  end
  return wait
end

local function caps_for(G, camp)
  local cfg = G.camps[camp_tag(camp)]
  if cfg and cfg.caps then return cfg.caps end
  return G.caps
end

local GRANT_FIELDS = {'state', 'wr', 'prov', 'prio', 'camp', 'dialer', 'dtok', 'raw',
                      'attempts', 'cn', 'unsure', 'cancelled', 'to', 'dk', 'first_seen',
                      'ready_since', 'rd', 'calls', 'dial_ms', 'pf'}

local function take(id, f, G, tok, canary)
  unput(id, f)
  local att, cn = tonumber(f.attempts or '0'), tonumber(f.cn or '0')
  local dial_ms = tonumber(f.dial_ms or NOW)
  if f.unsure ~= '1' then att, cn, dial_ms = att + 1, math.max(cn, 0) + 1, NOW end
  local slot = G.slot_cap and G.slot_cap > 0
  local cfg = G.camps[camp_tag(f.camp)]
  local cslot = cfg and cfg.cap
  -- sl: whether the job holds a call slot, so that its result need not free one it never had
  redis.call('HSET', jkey(id), 'state', 'dialing', 'attempts', att, 'cn', cn,
             'dial_ms', dial_ms, 'dtok', tok, 'rtok', tok, 'dialer', G.consumer,
             'sl', (slot or cslot) and '1' or '0')
  redis.call('SADD', P .. 'held:' .. G.consumer, id)
  if slot then redis.call('ZADD', P .. 'slots:' .. G.prov, NOW + G.lease, id) end
  if cslot then redis.call('ZADD', P .. 'cslots:' .. f.camp, NOW + G.lease, id) end
  local caps = caps_for(G, f.camp)
  if caps and #caps > 0 and f.to and f.to ~= '' then
    local nk = P .. 'num:' .. f.to
    redis.call('ZREMRANGEBYSCORE', nk, '-inf', NOW - G.caps_keep)
    redis.call('ZADD', nk, NOW, tok)
    redis.call('PEXPIRE', nk, G.caps_keep + 1000)
  end
  enter(f.camp, 'dialing')
  local bucket = I(math.floor(NOW / 10000))
  bump(P .. 'pace:*', bucket, 1, 180)
  if f.camp and f.camp ~= '' then bump(P .. 'pace:' .. f.camp, bucket, 1, 180) end
  tl(id, 'granted', {call = cn, canary = canary or nil, w = G.consumer})
  return {id = id, raw = f.raw, attempts = att, cn = cn, unsure = f.unsure == '1', tok = tok,
          camp = f.camp or '', prio = f.prio, first_seen = tonumber(f.first_seen or NOW),
          ready_since = tonumber(f.ready_since or f.first_seen or NOW),
          rd = tonumber(f.rd or '0'), calls = f.calls or '[]', canary = canary or false,
          dial_ms = dial_ms, pf = tonumber(f.pf or '0')}
end

-- An empty do-not-call list is seen once per call, not once per job.
local DNC_EMPTY
local function dnc_listed(dk)
  if DNC_EMPTY == nil then DNC_EMPTY = redis.call('EXISTS', P .. 'dnc') == 0 end
  return not DNC_EMPTY and redis.call('SISMEMBER', P .. 'dnc', dk) == 1
end

-- One job popped from the queue: grant it, or route it (cancelled, alone or with its whole
-- campaign; do-not-call; number cap).
local function consider(id, G, out, toks, canary)
  local f = hget(jkey(id), GRANT_FIELDS)
  local expected = canary and 'parked' or 'queued'
  if f.state ~= expected then return false end
  local camp_cancelled = f.camp and f.camp ~= '' and
      redis.call('SISMEMBER', P .. 'ccancel', f.camp) == 1
  if f.cancelled == '1' or camp_cancelled then
    to_finish(id, f, 'cancelled')
    table.insert(out.fin, id)
    return false
  end
  if G.dnc and f.dk and dnc_listed(f.dk) then
    to_finish(id, f, 'blocked:dnc')
    table.insert(out.fin, id)
    return false
  end
  local nw = number_wait(f.to, caps_for(G, f.camp))
  if nw > 0 then
    unput(id, f)
    put(id, f, 'delayed', 'number_cap', NOW + nw)
    return false
  end
  if caller_held(id, f, G) then return false end  -- lib/callerid.lua
  if budget_held(id, f, G) then return false end  -- lib/budget.lua
  local tok = G.tok .. '.' .. (#toks + 1)
  toks[#toks + 1] = tok
  table.insert(out.jobs, take(id, f, G, tok, canary))
  caller_took(G, tok, out.jobs[#out.jobs])
  budget_took(G, out.jobs[#out.jobs])
  return true
end

local function grant(G)
  use_margin(G)
  local out = {prov = G.prov, jobs = {}, fin = {}, wait = 0, why = 'ok', ov = G.ov}
  local mode, hw = halt_mode(G.prov)
  if mode == 'halted' then out.wait, out.why = hw, 'halted'; return out end
  local cw = cooldown_wait(G.prov)
  if cw > 0 then out.wait, out.why = cw, 'cooldown'; return out end
  local room, rwait = rate_room(G)
  -- live calls due for a poll go first: they free slots and bring results, and a backlog
  -- of new dials must not starve them
  local polls = redis.call('ZCOUNT', P .. 'tracking:' .. G.prov, '-inf', NOW)
  if room > 0 and room <= polls then rwait = 50 end
  room = room - polls
  if room <= 0 then out.wait, out.why = rwait, 'rate'; return out end
  local slots = slot_room(G)
  if slots <= 0 then out.wait, out.why = 250, 'slot'; return out end
  local want = math.min(G.k, room, slots)
  if mode == 'canary' then want = 1 else reserve_start(G, polls) end
  local toks, skips = {}, 0
  while #toks < want and skips < SKIP_LIMIT do
    local ids = mode == 'canary' and canary_pick(G) or pick(G, want - #toks)
    if #ids == 0 then out.why = 'empty'; break end
    for _, id in ipairs(ids) do  -- every id popped is taken or routed, none is dropped
      if consider(id, G, out, toks, mode == 'canary') then
        reserve_took(G, out.jobs[#out.jobs])
      else
        skips = skips + 1
      end
    end
    if mode == 'canary' and #toks == 0 then break end
  end
  reserve_blocked(G, out)
  if mode == 'canary' and #toks == 0 then
    redis.call('HDEL', P .. 'halt:' .. G.prov, 'canary_until', 'canary')
  end
  rate_take(G, toks)
  out.jobs = arr(out.jobs)
  out.fin = arr(out.fin)
  return out
end
