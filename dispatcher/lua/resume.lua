--! include core place
-- RESUME: clear a provider's halt, put a batch of its parked jobs back in their ready lists,
-- and make its live calls due for a poll at once (they were not polled while halted).
-- A = {prov, batch, max_defer (ms)}. Returns {was_halted, moved, left}; call again while
-- left > 0. Safe to run twice.

local was = redis.call('DEL', P .. 'halt:' .. A.prov)
local FIELDS = {'state', 'wr', 'prov', 'prio', 'camp', 'raw', 'exp'}
local moved = 0
local ids = redis.call('ZRANGE', P .. 'parked:' .. A.prov, 0, A.batch - 1)
for _, id in ipairs(ids) do
  local f = hget(jkey(id), FIELDS)
  if f.state == 'parked' and f.raw then
    unput(id, f)
    local deadline = NOW + A.max_defer
    local exp = tonumber(f.exp or '0')
    if exp > 0 and exp < deadline then deadline = exp end
    redis.call('HSET', jkey(id), 'ready_since', NOW)
    redis.call('ZADD', P .. 'deadlines', deadline, id)
    put(id, f, 'queued')
    tl(id, 'resumed', {})  -- the timeline would otherwise end at "parked"
    moved = moved + 1
  else
    redis.call('ZREM', P .. 'parked:' .. A.prov, id)
  end
end
if was == 1 then
  local tk = P .. 'tracking:' .. A.prov
  for _, id in ipairs(redis.call('ZRANGE', tk, 0, -1)) do redis.call('ZADD', tk, NOW, id) end
end
return reply({was_halted = was == 1, moved = moved,
              left = redis.call('ZCARD', P .. 'parked:' .. A.prov)})
