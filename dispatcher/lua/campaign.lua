--! include core place dormant
-- CAMPAIGN: pause, resume or cancel a campaign.
-- A = {op = 'pause' | 'resume' | 'cancel', camp, provs = [configured provider names], batch}.
-- pause: no new dial for its jobs from the next grant on (calls already live go on).
-- resume: dials again; the time it was paused does not count toward max_defer_s; a cancelled
--         campaign accepts new jobs again.
-- cancel: every job of the campaign not yet dialled is queued for a `cancelled` result,
--         `batch` at a time (call again while `left` > 0), and jobs pushed later are cancelled
--         at intake until `resume`.
-- Returns {op, cancelled (this call), left}. Safe to run twice.

local c = A.camp
local ck = P .. 'camp:' .. c

local function cancel_batch()
  local n = 0
  for _, prov in ipairs(A.provs) do
    for _, prio in ipairs(PRIOS) do
      local rk = ready_key(prov, prio, c)
      while n < A.batch do
        local id = redis.call('LPOP', rk)
        if not id then break end
        local f = jget(id, JOB_FIELDS)
        if f.state == 'queued' then to_finish(id, f, 'cancelled', 0); n = n + 1 end
      end
      if redis.call('LLEN', rk) == 0 then redis.call('ZREM', rq_key(prov, prio), c) end
    end
  end
  for _, id in ipairs(redis.call('SRANDMEMBER', P .. 'cwait:' .. c, math.max(A.batch - n, 0))) do
    local f = jget(id, JOB_FIELDS)
    if f.state == 'delayed' or f.state == 'parked' then
      to_finish(id, f, 'cancelled', 0)
      n = n + 1
    else
      redis.call('SREM', P .. 'cwait:' .. c, id)
    end
  end
  local left = redis.call('SCARD', P .. 'cwait:' .. c)
  for _, prov in ipairs(A.provs) do
    for _, prio in ipairs(PRIOS) do left = left + redis.call('LLEN', ready_key(prov, prio, c)) end
  end
  return n, left
end

redis.call('ZADD', P .. 'campaigns', 'NX', NOW, c)
if A.op == 'pause' then
  redis.call('SADD', P .. 'paused', c)
  redis.call('HSETNX', ck, 'paused_since', NOW)
  return reply({op = 'pause', cancelled = 0, left = 0})
end
if A.op == 'resume' then
  redis.call('SREM', P .. 'paused', c)
  redis.call('SREM', P .. 'ccancel', c)
  local since = redis.call('HGET', ck, 'paused_since')
  if since then
    redis.call('HINCRBY', ck, 'paused_ms', NOW - tonumber(since))
    redis.call('HDEL', ck, 'paused_since')
  end
  return reply({op = 'resume', cancelled = 0, left = 0})
end
redis.call('SADD', P .. 'ccancel', c)
local n, left = cancel_batch()
return reply({op = 'cancel', cancelled = n, left = left})
