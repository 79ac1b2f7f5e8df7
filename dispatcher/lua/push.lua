--! include core
-- PUSH: a producer's batch of jobs into the jobs stream, once per batch.
-- A = {batch (a token the producer makes up for this batch), jobs = [payload text, ...],
--      ttl (s)}.
-- Returns {n = entries added, known = how many of their ids the dispatcher already knew (read
-- by a worker before, or earlier in this batch: they will not be dialled again),
-- again = true when this batch was pushed before}.
-- Safe to run twice: the batch's token is remembered for ttl seconds (with its known count)
-- and a second run with it adds nothing, so a producer that lost the reply can send the batch
-- again.
local mark = P .. 'pushed:' .. A.batch
local before = redis.call('GET', mark)
if before then
  return reply({n = 0, known = tonumber(string.match(before, ' (%d+)$') or '0'), again = true})
end
local known, seen = 0, {}
for _, job in ipairs(A.jobs) do
  local ok, d = pcall(cjson.decode, job)
  local id = ok and type(d) == 'table' and d.id or nil
  if type(id) == 'string' then
    if seen[id] or redis.call('HEXISTS', P .. 'dormant', id) == 1
        or redis.call('HEXISTS', jkey(id), 'owner') == 1 then
      known = known + 1
    end
    seen[id] = true
  end
  redis.call('XADD', KEYS[1], '*', 'job', job)
end
redis.call('SET', mark, #A.jobs .. ' ' .. known, 'EX', A.ttl)
return reply({n = #A.jobs, known = known, again = false})
