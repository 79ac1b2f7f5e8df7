--! include core
-- CONSENT: add events to numbers' consent ledgers (`consent:<key>`, a list of JSON events,
-- oldest first, never rewritten: the history is the evidence). The key is the number's
-- do-not-call key (E.164, or its SHA-256 with policy.dnc_hashed).
-- A.events = [{dk, ev = {k = 'c', id, scope, given, src, exp, rec} or {k = 'r', id, at, via, rec}}]
-- A.dnc (bool): a revocation also puts the number on the do-not-call list.
-- Returns {added = n, again = n}: again counts events whose id the ledger already held.
-- Safe to run twice: the second run finds every id and adds nothing.

local function holds(k, id)
  for _, raw in ipairs(redis.call('LRANGE', k, 0, -1)) do
    if cjson.decode(raw).id == id then return true end
  end
  return false
end

local added, again = 0, 0
for _, x in ipairs(A.events) do
  local k = P .. 'consent:' .. x.dk
  if holds(k, x.ev.id) then
    again = again + 1
  else
    redis.call('RPUSH', k, cjson.encode(x.ev))
    added = added + 1
  end
  if x.ev.k == 'r' and A.dnc then redis.call('SADD', P .. 'dnc', x.dk) end
end
return reply({added = added, again = again})
