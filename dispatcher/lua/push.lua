--! include core
-- PUSH: a producer's batch of jobs into the jobs stream, once per batch.
-- A = {batch (a token the producer makes up for this batch), jobs = [payload text, ...],
--      ttl (s)}.
-- Returns {n = entries added, again = true when this batch was pushed before}.
-- Safe to run twice: the batch's token is remembered for ttl seconds and a second run with it
-- adds nothing, so a producer that lost the reply can send the batch again.
local mark = P .. 'pushed:' .. A.batch
if redis.call('EXISTS', mark) == 1 then return reply({n = 0, again = true}) end
for _, job in ipairs(A.jobs) do redis.call('XADD', KEYS[1], '*', 'job', job) end
redis.call('SET', mark, #A.jobs, 'EX', A.ttl)
return reply({n = #A.jobs, again = false})
