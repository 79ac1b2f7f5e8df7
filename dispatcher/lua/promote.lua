--! include core place dormant
-- PROMOTE: move due jobs from a waiting set back to their ready lists.
-- A = {src = 'delayed' | 'parked:<prov>', top = 'now' | '+inf', limit, max_defer (ms)}.
-- A job leaving a wait that does not count toward max_defer_s (not_before, calling window,
-- redial, halt, unknown provider, a stale do-not-call registry) starts its ready time afresh.
-- Returns {moved, seen}. Safe to run twice: a moved job is no longer in the source set.

local EXCUSED = {not_before = true, window = true, redial = true, halted = true,
                 unknown_provider = true, paused = true, registry_stale = true}
local FIELDS = {'state', 'wr', 'prov', 'prio', 'camp', 'raw', 'exp'}

local top = A.top == 'now' and NOW or A.top
local src = P .. A.src
local ids = redis.call('ZRANGEBYSCORE', src, '-inf', top, 'LIMIT', 0, A.limit)
local moved = 0
for _, id in ipairs(ids) do
  local f = jget(id, FIELDS)
  if (f.state == 'delayed' or f.state == 'parked') and f.raw then
    unput(id, f)
    if EXCUSED[f.wr or ''] then
      local deadline = NOW + A.max_defer
      local exp = tonumber(f.exp or '0')
      if exp > 0 and exp < deadline then deadline = exp end
      local pb = redis.call('HGET', P .. 'camp:' .. camp_tag(f.camp), 'paused_ms') or 0
      redis.call('HSET', jkey(id), 'ready_since', NOW, 'pause_base', pb)
      redis.call('ZADD', P .. 'deadlines', deadline, id)
    end
    put(id, f, 'queued')
    moved = moved + 1
  else
    redis.call('ZREM', src, id)
    if f.state and f.state ~= 'done' and not f.raw then
      redis.call('HSET', jkey(id), 'state', 'orphaned')  -- no payload to send: say so
      ix_out(id, f.state, f.camp)
      ix_in(id, 'orphaned', f.camp)
      redis.call('SADD', P .. 'orphans', id)
    end
  end
end
return reply({moved = moved, seen = #ids})
