--! include core
-- CLAIMFIN: lease the jobs whose result is due (the finish queue) to this worker and return
-- what building each result needs. A = {lease (ms), limit, ids (optional: these ids, due
-- or not — the caller queued them a moment ago)}.
-- Returns {jobs = [{id, fin, raw, attempts, first_seen, prov, camp, calls, wr, last_status,
-- last_code, cn, owner (the stream entry that brought it)}]}. Jobs no longer finishing are dropped from the queue.
local FIELDS = {'state', 'fin', 'raw', 'attempts', 'first_seen', 'prov', 'camp', 'calls', 'wr',
                'last_status', 'last_code', 'cn', 'owner'}
local out = {}
local ids = A.ids or redis.call('ZRANGEBYSCORE', P .. 'finishq', '-inf', NOW, 'LIMIT', 0, A.limit)
for _, id in ipairs(ids) do
  local f = hget(jkey(id), FIELDS)
  if f.state == 'finishing' then
    redis.call('ZADD', P .. 'finishq', NOW + A.lease, id)
    f.id = id
    table.insert(out, f)
  else
    redis.call('ZREM', P .. 'finishq', id)
  end
end
return reply({jobs = arr(out)})
