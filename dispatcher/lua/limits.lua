--! include core
-- LIMITS: set, clear or read a provider's limits at runtime; every grant reads them
-- (lib/rate.lua, use_override). A = {prov, op = 'set' | 'reset' | 'get', by (who: 'cli@host'),
-- and for 'set' any of: wins = [[limit, ms], ...] with pace = [[limit, ms], ...] and
-- margin (ms), slots (call-slot cap)}. Each value keeps since (ms) and by.
-- Returns the stored fields after the change. Safe to run twice: the second run stores the
-- same values (with its own time).
local k = P .. 'limits:' .. A.prov
if A.op == 'reset' then
  redis.call('DEL', k)
elseif A.op == 'set' then
  if A.wins then
    redis.call('HSET', k, 'wins', cjson.encode(A.wins), 'pace', cjson.encode(arr(A.pace or {})),
               'margin', A.margin, 'wins_since', NOW, 'wins_by', A.by)
  end
  if A.slots then
    redis.call('HSET', k, 'slots', A.slots, 'slots_since', NOW, 'slots_by', A.by)
  end
end
local all = redis.call('HGETALL', k)
local out = {}
for i = 1, #all, 2 do out[all[i]] = all[i + 1] end
return reply(out)
