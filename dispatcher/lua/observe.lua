--! include core
-- OBSERVE: the provider's own count of a window (X-RateLimit-Remaining) is lower than ours —
-- the key is shared with something else — so follow it until the window resets.
-- A = {prov, limit, ms (window), remaining, reset (ms)}. Returns 1 when the hint was set.
local n = redis.call('ZCOUNT', P .. 'rl:' .. A.prov, '(' .. I(NOW - A.ms), '+inf')
local ours = A.limit - n
if A.remaining < ours then
  local ttl = A.reset
  if ttl <= 0 then ttl = A.ms end
  redis.call('SET', P .. 'hint:' .. A.prov .. ':' .. I(A.ms), A.remaining, 'PX', ttl)
  return reply(1)
end
return reply(0)
