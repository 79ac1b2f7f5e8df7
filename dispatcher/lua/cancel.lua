--! include core place dormant
-- CANCEL: the producer takes a job back before it is dialled.
-- A = {id, ttl (s), ahead (bool)}. Returns {r}: 'cancelled' (a result follows), 'ahead' (not
-- seen yet: it will be cancelled when pushed), 'unknown' (never seen and not ahead), 'done'
-- (it already has a result), 'too_late' (being dialled or its call is live).
-- Safe to run twice: the second run finds it finishing or done.

local FIELDS = {'state', 'wr', 'prov', 'camp', 'dialer', 'owner'}
local h = jkey(A.id)
local f = jget(A.id, FIELDS)
if f.state == 'done' then return reply({r = 'done'}) end
if f.state == 'dialing' or f.state == 'tracking' then return reply({r = 'too_late'}) end
if not f.owner then
  if not A.ahead and not f.state then return reply({r = 'unknown'}) end
  redis.call('HSET', h, 'cancelled', '1')
  redis.call('EXPIRE', h, A.ttl)
  return reply({r = 'ahead'})
end
redis.call('HSET', h, 'cancelled', '1')
if f.state == 'queued' or f.state == 'delayed' or f.state == 'parked' then
  to_finish(A.id, f, 'cancelled', 0)
  tl(A.id, 'cancel_requested', {})
end
return reply({r = 'cancelled'})
