--! include core rate
-- OBSERVE: the provider's own count of a window (X-RateLimit-Remaining) is lower than ours —
-- the key is shared with something else — so follow it until the window resets.
-- A = {prov, limit, ms (window), remaining, reset (ms), margin (ms, the floor)}.
-- Returns 1 when the hint was set.
-- The provider counts arrivals, which come up to the margin after their grants: so "ours"
-- counts the grants of the last window plus the margin, or every burst near a window's edge
-- would look like someone else's traffic (and a 1-s window would lose a second to the hint).
-- Safe to run twice: the second run sets the same hint again.
local R = {prov = A.prov, margin = A.margin or 0}
use_margin(R)
local n = redis.call('ZCOUNT', P .. 'rl:' .. A.prov, '(' .. I(NOW - A.ms - R.margin), '+inf')
local ours = A.limit - n
if A.remaining < ours then
  local ttl = A.reset
  if ttl <= 0 then ttl = A.ms end
  redis.call('SET', P .. 'hint:' .. A.prov .. ':' .. I(A.ms), A.remaining, 'PX', ttl)
  return reply(1)
end
return reply(0)
