--! include core
-- SHRINK: the provider refused a call at the current number of live calls: cap the slots at
-- what is in use for a while. A = {prov, ttl (ms)}. Returns the new cap.
local k = P .. 'slots:' .. A.prov
redis.call('ZREMRANGEBYSCORE', k, '-inf', NOW)
local inuse = math.max(redis.call('ZCARD', k), 1)
redis.call('SET', P .. 'slotcap:' .. A.prov, inuse, 'PX', A.ttl)
return reply(inuse)
