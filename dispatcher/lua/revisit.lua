--! include core
-- REVISIT: a live call stays live — next visit in `delay` ms, call slot lease renewed.
-- A = {items = [{id, prov, delay, lease (optional), camp}]}. Only jobs still tracking are touched, so
-- running it twice changes nothing more than the first run did.
for _, it in ipairs(A.items) do
  if redis.call('HGET', jkey(it.id), 'state') == 'tracking' then
    redis.call('ZADD', P .. 'tracking:' .. it.prov, 'XX', NOW + it.delay, it.id)
    if it.lease then
      redis.call('ZADD', P .. 'slots:' .. it.prov, 'XX', NOW + it.lease, it.id)
      if it.camp and it.camp ~= '' then
        redis.call('ZADD', P .. 'cslots:' .. it.camp, 'XX', NOW + it.lease, it.id)
      end
    end
  end
end
return reply(1)
