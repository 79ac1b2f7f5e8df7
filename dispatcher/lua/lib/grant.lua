-- Granting dials: the provider's budget is given to the best ready job, across every worker.
-- G: R fields (prov, wins, margin, slot_cap, lease) plus k (most grants wanted), consumer,
--    reserve (share of each window kept for high priority), cid (caller-ID pool, see
--    lib/callerid.lua),
--    tok (unique per call), caps = {{limit, ms}} per-number caps (default policy),
--    caps_keep (ms a number's log is kept), camps = {name = {share, cap, caps, subject_caps}},
--    dnc (bool), subject_caps = {{limit, ms}} per-subject caps (default policy),
--    consent (bool: policy.require_consent; a campaign's `consent` overrides it),
--    regs = {{name, max_age, applies}} do-not-call registries that must be fresh.

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

-- Per-subject caps: one log of call starts per subject (the person or lead, whatever number
-- or job id), like per-number caps. A job's own list (`sc`, written at intake when its region
-- adds caps) wins over its campaign's and the default.
local function subject_caps(G, f)
  if not f.subj or f.subj == '' then return nil end
  if f.sc and f.sc ~= '' then return cjson.decode(f.sc) end
  local cfg = G.camps[camp_tag(f.camp)]
  if cfg and cfg.subject_caps then return cfg.subject_caps end
  return G.subject_caps
end

local function span_words(ms)
  if ms % 86400000 == 0 and ms > 86400000 then return I(ms / 86400000) .. ' days' end
  if ms % 3600000 == 0 then return I(ms / 3600000) .. ' h' end
  if ms % 60000 == 0 then return I(ms / 60000) .. ' min' end
  return I(math.floor(ms / 1000)) .. ' s'
end

-- How long the subject must wait (0: not capped), and the rule that holds it, in words.
local function subject_wait(subj, caps)
  if not caps or #caps == 0 then return 0 end
  local k = P .. 'subj:' .. subj
  local wait, why = 0, nil
  for _, c in ipairs(caps) do
    local lo = '(' .. I(NOW - c[2])
    local n = redis.call('ZCOUNT', k, lo, '+inf')
    if n >= c[1] then
      local e = redis.call('ZRANGEBYSCORE', k, lo, '+inf', 'WITHSCORES', 'LIMIT', n - c[1], 1)
      local w = tonumber(e[2]) + c[2] - NOW
      if w > wait then
        wait = w
        why = I(n) .. ' calls to subject ' .. subj .. ' in the last ' .. span_words(c[2])
      end
    end
  end
  return wait, why
end

local function subject_take(subj, caps, tok)
  local keep = 0
  for _, c in ipairs(caps) do keep = math.max(keep, c[2]) end
  local k = P .. 'subj:' .. subj
  redis.call('ZREMRANGEBYSCORE', k, '-inf', NOW - keep)
  redis.call('ZADD', k, NOW, tok)
  redis.call('PEXPIRE', k, keep + 1000)
end

local GRANT_FIELDS = {'state', 'wr', 'prov', 'prio', 'camp', 'dialer', 'dtok', 'raw',
                      'attempts', 'cn', 'unsure', 'cancelled', 'to', 'dk', 'first_seen',
                      'ready_since', 'rd', 'calls', 'dial_ms', 'pf', 'subj', 'sc', 'rg'}

local function take(id, f, G, tok, canary)
  unput(id, f)
  local att, cn = tonumber(f.attempts or '0'), tonumber(f.cn or '0')
  local dial_ms = tonumber(f.dial_ms or NOW)
  if f.unsure ~= '1' then att, cn, dial_ms = att + 1, math.max(cn, 0) + 1, NOW end
  local slot = G.slot_cap and G.slot_cap > 0
  local cfg = G.camps[camp_tag(f.camp)]
  local cslot = cfg and cfg.cap
  -- sl: whether the job holds a call slot, so that its result need not free one it never had.
  -- dial_ms: the first dial of this call number (where a look-up starts searching); gt: this
  -- grant (a takeover waits from here, as a send may follow it however old dial_ms is)
  redis.call('HSET', jkey(id), 'state', 'dialing', 'attempts', att, 'cn', cn,
             'dial_ms', dial_ms, 'gt', NOW, 'dtok', tok, 'rtok', tok, 'dialer', G.consumer,
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
  local scaps = subject_caps(G, f)
  if scaps and #scaps > 0 then subject_take(f.subj, scaps, tok) end
  enter(f.camp, 'dialing')
  ix_in(id, 'dialing', f.camp)
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

-- Consent (policy.require_consent, or the campaign's own): the number's ledger must hold a
-- consent whose scope is '*' or the campaign, given by now, not expired, and not revoked at or
-- after it (the same rule as dispatcher/core/consent.py).
local function consent_needed(G, camp)
  local cfg = G.camps[camp_tag(camp)]
  if cfg and cfg.consent ~= nil then return cfg.consent end
  return G.consent
end

local function consented(dk, camp)
  if not dk or dk == '' then return false end
  local evs, revoked = {}, {}
  for _, raw in ipairs(redis.call('LRANGE', P .. 'consent:' .. dk, 0, -1)) do
    local e = cjson.decode(raw)
    if e.k == 'r' then
      if e.at <= NOW then revoked[#revoked + 1] = e.at end
    else
      evs[#evs + 1] = e
    end
  end
  local c = camp_tag(camp)
  for _, e in ipairs(evs) do
    if (e.scope == '*' or e.scope == c) and e.given <= NOW and (e.exp == 0 or e.exp > NOW) then
      local ok = true
      for _, r in ipairs(revoked) do if r >= e.given then ok = false; break end end
      if ok then return true end
    end
  end
  return false
end

-- Registry freshness: G.regs = {{name, max_age (ms), applies = {codes}}}. A registry whose
-- loaded copy (registries: name -> as-of ms) is missing or older than max_age holds the jobs
-- of the regions it covers (the job's `rg`, or its country), fail closed. Read once per call.
local REG_RECHECK_MS = 60000  -- a held job looks again this often (timing.py)
local STALE
local function stale_regions(G)
  if STALE then return STALE end
  STALE = {}
  for _, r in ipairs(G.regs or {}) do
    local asof = tonumber(redis.call('HGET', P .. 'registries', r.name) or '')
    if not asof or NOW - asof > r.max_age then
      local why = asof and ('do-not-call registry ' .. r.name .. ' is ' ..
                            I(math.floor((NOW - asof) / 86400000)) .. ' days old (at most ' ..
                            I(r.max_age / 86400000) .. ')')
                      or ('do-not-call registry ' .. r.name .. ' has never been imported')
      for _, code in ipairs(r.applies) do STALE[code] = STALE[code] or why end
    end
  end
  return STALE
end

local function registry_hold(G, rg)
  if not G.regs or #G.regs == 0 or not rg or rg == '' then return nil end
  local s = stale_regions(G)
  return s[rg] or s[string.match(rg, '^[^-]+')]
end

-- Whether the job may be called at all (consent, registry freshness, per-subject caps): true
-- when it was routed instead (blocked, or waiting).
local function whether_routed(id, f, G, out)
  if consent_needed(G, f.camp) and not consented(f.dk, f.camp) then
    tl(id, 'blocked', {r = 'no_consent', d = 'no consent on record for ' ..
                       ((f.camp and f.camp ~= '') and ('campaign ' .. f.camp) or 'this number')})
    to_finish(id, f, 'blocked:no_consent')
    table.insert(out.fin, id)
    return true
  end
  local held = registry_hold(G, f.rg)
  local sw, swhy = 0, nil
  if not held then sw, swhy = subject_wait(f.subj, subject_caps(G, f)) end
  if held or sw > 0 then
    unput(id, f)
    if held then put(id, f, 'delayed', 'registry_stale', NOW + REG_RECHECK_MS, held)
    else put(id, f, 'delayed', 'subject_cap', NOW + sw, swhy) end
    return true
  end
  return false
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
  if whether_routed(id, f, G, out) then return false end
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

-- A dead worker's dials whose look-up is due go to the head of their lists now, so this
-- grant's room goes to them before any new dial (heartbeat.lua lists them in recon:<prov>;
-- one moved on meanwhile, by promotion or otherwise, just leaves the list).
local RECON_FIELDS = {'state', 'wr', 'prov', 'prio', 'camp'}
local function due_reconciles(G)
  local rk = P .. 'recon:' .. G.prov
  local ids = redis.call('ZRANGEBYSCORE', rk, '-inf', NOW, 'LIMIT', 0, 100)
  for _, id in ipairs(ids) do
    local f = hget(jkey(id), RECON_FIELDS)
    if f.state == 'delayed' and f.wr == 'reconcile' and f.prov == G.prov and
        redis.call('HEXISTS', jkey(id), 'raw') == 1 then
      unput(id, f)
      put(id, f, 'queued')
    end
  end
  if #ids > 0 then redis.call('ZREM', rk, unpack(ids)) end
end

-- The tokens that enter the log. With G.shared (the provider lists its calls), the unsure
-- jobs of one grant are looked up by one listing, which needs one place, not one each: the
-- first one's; the others get none (np).
local function place(G, job, places)
  if G.shared and job.unsure and places.unsure then
    job.np = true
    return
  end
  places[#places + 1] = job.tok
  places.unsure = places.unsure or (G.shared and job.unsure)
  reserve_took(G, job)
end

local function grant(G)
  use_margin(G)
  local out = {prov = G.prov, jobs = {}, fin = {}, wait = 0, why = 'ok', ov = G.ov}
  local mode, hw = halt_mode(G.prov)
  if mode == 'halted' then out.wait, out.why = hw, 'halted'; return out end
  local cw = cooldown_wait(G.prov)
  if cw > 0 then out.wait, out.why = cw, 'cooldown'; return out end
  due_reconciles(G)
  local room, rwait = rate_room(G)
  -- live calls due for a poll go first: they free slots and bring results, and a backlog
  -- of new dials must not starve them
  local polls = redis.call('ZCOUNT', P .. 'tracking:' .. G.prov, '-inf', NOW)
  if room > 0 and room <= polls then rwait = 50 end
  room = room - polls
  if room <= 0 then out.wait, out.why = rwait, 'rate'; return out end
  local slots = slot_room(G)
  if slots <= 0 then out.wait, out.why = 250, 'slot'; return out end
  local want = math.min(G.k, slots)
  if mode == 'canary' then want = 1 else reserve_start(G, polls) end
  local toks, places, skips = {}, {}, 0
  while #toks < want and #places < room and skips < SKIP_LIMIT do
    local n = math.min(want - #toks, room - #places)
    local ids = mode == 'canary' and canary_pick(G) or pick(G, n)
    if #ids == 0 then out.why = 'empty'; break end
    for _, id in ipairs(ids) do  -- every id popped is taken or routed, none is dropped
      if consider(id, G, out, toks, mode == 'canary') then
        place(G, out.jobs[#out.jobs], places)
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
  rate_take(G, places)
  out.jobs = arr(out.jobs)
  out.fin = arr(out.fin)
  return out
end
