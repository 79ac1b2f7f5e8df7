-- Spend budgets: a campaign with a budget is dialled only while what it spent today (calls
-- billed, spend:<camp> field <day>) plus the worst case of its live calls (bhold:<camp>, a
-- zset of "<worst>|<job id>" held until the call is billed or the hold lapses) plus this
-- call's worst case stays within the budget. In millionths of the money unit.
-- G.worst (a call's worst case with this provider; absent: no price, nothing counted),
-- G.hold_ms (how long a hold lasts: the longest a call can be live);
-- G.camps[c] = {budget, bday (today in its budget zone), bnext (ms the next day starts)}.
-- consider() calls budget_held() before a job is taken and budget_took() after.

local function budget_of(G, camp)
  local cfg = G.camps[camp_tag(camp)]
  if not G.worst or not cfg or not cfg.budget then return nil end
  G.bud = G.bud or {}
  local b = G.bud[camp]
  if b then return b, cfg end
  local hk = P .. 'bhold:' .. camp
  redis.call('ZREMRANGEBYSCORE', hk, '-inf', NOW)
  local held, first = 0, nil
  local all = redis.call('ZRANGE', hk, 0, -1, 'WITHSCORES')
  for i = 1, #all, 2 do
    held = held + tonumber(all[i]:match('^(%d+)|') or '0')
    local exp = tonumber(all[i + 1])
    if not first or exp < first then first = exp end
  end
  local billed = tonumber(redis.call('HGET', P .. 'spend:' .. camp, cfg.bday) or '0')
  b = {billed = billed, held = held, first = first}
  G.bud[camp] = b
  return b, cfg
end

-- True when the job waits (reason budget): until the next day when what is billed already
-- leaves no room for one more call, else until the first live call's hold could end.
local function budget_held(id, f, G)
  local b, cfg = budget_of(G, f.camp)
  if not b or b.billed + b.held + G.worst <= cfg.budget then return false end
  local due = cfg.bnext
  if b.billed + G.worst <= cfg.budget then
    due = math.min(cfg.bnext, math.max(math.min(b.first or NOW, NOW + 30000), NOW + 1000))
  end
  unput(id, f)
  put(id, f, 'delayed', 'budget', due)
  return true
end

local function budget_took(G, job)
  local b = budget_of(G, job.camp)
  if not b then return end
  local hk = P .. 'bhold:' .. job.camp
  redis.call('ZADD', hk, NOW + G.hold_ms, I(G.worst) .. '|' .. job.id)
  redis.call('PEXPIRE', hk, G.hold_ms + 1000)
  b.held = b.held + G.worst
end
