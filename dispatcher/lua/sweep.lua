--! include core place dormant
-- SWEEP: jobs past their deadline (expires_at, or max_defer_s of waiting while ready) are
-- queued for their result. A = {limit}. The deadline set holds min(expires_at, ready_since +
-- max_defer); a job whose campaign is paused, or that waits for a reason that does not count
-- (calling window, not_before, redial, a stale registry), is looked at again later instead.
-- Returns {due = [ids]} (the caller writes their results). Safe to run twice.

local EXCUSED = {not_before = true, window = true, redial = true, halted = true,
                 unknown_provider = true, paused = true, registry_stale = true}
local FIELDS = {'state', 'wr', 'prov', 'camp', 'exp', 'dialer', 'pause_base'}

local out = {}
local ids = redis.call('ZRANGEBYSCORE', P .. 'deadlines', '-inf', NOW, 'LIMIT', 0, A.limit)
for _, id in ipairs(ids) do
  local f = jget(id, FIELDS)
  local exp = tonumber(f.exp or '0')
  local waiting = f.state == 'queued' or f.state == 'delayed'
  if not waiting then
    redis.call('ZREM', P .. 'deadlines', id)
  elseif exp > 0 and exp <= NOW then
    redis.call('ZREM', P .. 'deadlines', id)
    to_finish(id, f, 'expired')
    table.insert(out, id)
  elseif f.state == 'delayed' and EXCUSED[f.wr or ''] then
    redis.call('ZREM', P .. 'deadlines', id)  -- set afresh when the wait ends
  elseif f.camp and f.camp ~= '' and redis.call('SISMEMBER', P .. 'paused', f.camp) == 1 then
    redis.call('ZADD', P .. 'deadlines', NOW + 60000, id)
  else
    -- time spent paused since the deadline was set does not count
    local paused = tonumber(redis.call('HGET', P .. 'camp:' .. (f.camp or '~'), 'paused_ms') or '0')
    local extra = paused - tonumber(f.pause_base or '0')
    if extra > 0 then
      redis.call('HSET', jkey(id), 'pause_base', paused)
      redis.call('ZINCRBY', P .. 'deadlines', extra, id)
    else
      redis.call('ZREM', P .. 'deadlines', id)
      to_finish(id, f, 'max_age')
      table.insert(out, id)
    end
  end
end
return reply({due = arr(out)})
