--! include core place
-- HALT: an account-level error stops a provider. Its ready jobs are parked (kept, not failed)
-- and its next probe is scheduled, doubling up to a cap while the halt lasts.
-- A = {prov, reason, code, first (ms), max (ms), batch}. Returns {backoff, parked, left, since,
-- new}: `since` names the halt and `new` says this call began it (so that a halt is logged
-- once, not once per job that meets it).
-- Call again while `left` > 0 (a long backlog is parked in batches). Safe to run twice: the
-- backoff only changes when a probe has failed (a canary was out) or on the first halt.

local hk = P .. 'halt:' .. A.prov
local h = hget(hk, {'backoff_ms', 'canary', 'since'})
local backoff = tonumber(h.backoff_ms or '0')
local since, new = tonumber(h.since or '0'), backoff == 0
if new then
  backoff, since = A.first, NOW
  redis.call('HSET', hk, 'since', NOW)
elseif h.canary then
  backoff = math.min(backoff * 2, A.max)
end
if backoff ~= tonumber(h.backoff_ms or '0') or h.canary then
  redis.call('HSET', hk, 'probe_at', NOW + backoff)
end
redis.call('HSET', hk, 'reason', A.reason, 'code', A.code, 'backoff_ms', backoff)
redis.call('HDEL', hk, 'canary_until', 'canary')

local parked, left = 0, 0
for _, prio in ipairs(PRIOS) do
  local rq = rq_key(A.prov, prio)
  for _, c in ipairs(redis.call('ZRANGE', rq, 0, -1)) do
    local rk = ready_key(A.prov, prio, c)
    while parked < A.batch do
      local id = redis.call('LPOP', rk)
      if not id then break end
      local f = hget(jkey(id), JOB_FIELDS)
      if f.state == 'queued' then
        unput(id, f)
        put(id, f, 'parked', 'halted')
        parked = parked + 1
      end
    end
    local n = redis.call('LLEN', rk)
    if n == 0 then redis.call('ZREM', rq, c) end
    left = left + n
  end
end
return reply({backoff = backoff, parked = parked, left = left, since = since, new = new})
