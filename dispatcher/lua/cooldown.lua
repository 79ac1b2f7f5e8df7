--! include core
-- COOLDOWN: pause every worker's requests to a provider (a 429's Retry-After). Extends the
-- pause, never shortens it. A = {prov, ms}. Returns the end of the pause (ms).
local key = P .. 'cooldown:' .. A.prov
local until_ms = NOW + A.ms
local cur = tonumber(redis.call('GET', key) or '0')
if until_ms > cur then redis.call('SET', key, until_ms, 'PX', A.ms + 1000) end
return reply(math.max(until_ms, cur))
