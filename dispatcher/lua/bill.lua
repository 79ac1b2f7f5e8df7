--! include core
-- BILL: a campaign's call ended: its cost is added to the day's spend and its live hold
-- (lib/budget.lua) released. A = {camp, day, id (job), worst (its hold), call_id, cost,
-- keep (s the spend hash is kept)}. Returns 1 when billed now, 0 when already billed.
-- Safe to run twice: a call is billed once (billed:<call id> remembers it).
local mark = P .. 'billed:' .. A.call_id
redis.call('ZREM', P .. 'bhold:' .. A.camp, I(A.worst) .. '|' .. A.id)
if not redis.call('SET', mark, 1, 'NX', 'EX', A.keep) then return reply(0) end
local k = P .. 'spend:' .. A.camp
redis.call('HINCRBY', k, A.day, A.cost)
redis.call('EXPIRE', k, A.keep)
return reply(1)
