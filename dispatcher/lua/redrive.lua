--! include core dormant
-- REDRIVE: put finished jobs back as new work after a fix (a wrong agent id, an outage that
-- exhausted them). The job's id is released (its next push is claimed again), its payload
-- goes back into the stream, and its history keeps an audit line. Its call numbers carry on,
-- so a new call never reuses a provider correlation id. It will get a second result.
-- A = {ids = [...], outcomes = [outcomes that may be redriven], dry (bool)}.
-- Returns {jobs = [{id, r}]} with r = 'redriven' (or 'would' when dry) | 'unknown' |
-- 'not_done' | 'outcome' (finished with another outcome) | 'no_payload'.
-- Safe to run twice: a redriven job is no longer done.
local allowed = {}
for _, o in ipairs(A.outcomes) do allowed[o] = true end
local out = {}
for _, id in ipairs(A.ids) do
  local h = jkey(id)
  local f = jget(id, {'state', 'outcome', 'raw', 'camp'})
  local r
  if not f.state then r = 'unknown'
  elseif f.state ~= 'done' then r = 'not_done'
  elseif not allowed[f.outcome or ''] then r = 'outcome'
  elseif not f.raw then r = 'no_payload'
  elseif A.dry then r = 'would'
  else
    redis.call('HDEL', h, 'owner', 'outcome', 'done_ms', 'fin')
    redis.call('HSET', h, 'state', 'redriven')
    redis.call('PERSIST', h)
    redis.call('PERSIST', P .. 'tl:' .. id)
    redis.call('XADD', KEYS[1], '*', 'job', f.raw)
    ix_out(id, 'done', f.camp, f.outcome)
    ix_in(id, 'redriven', f.camp)
    tl(id, 'redriven', {from = f.outcome})
    count(f.camp, 'redriven', 1)
    r = 'redriven'
  end
  table.insert(out, {id = id, r = r})
end
return reply({jobs = arr(out)})
