--! include core
-- CIDSTAT: one ended call of a caller ID from a provider's pool: its calls and answers, the
-- answer rate over its last `keep` calls, and whether that rate flags it.
-- A = {prov, id (caller ID), call_id, answered (bool), keep (calls the rate is taken over),
-- rate (flag below this share answered; absent: never flagged), rest (a newly flagged
-- caller ID is taken out of the pool until an operator restores it)}.
-- Returns {n, answered (of the last n), flagged, changed (the flag changed now), rested}.
-- Safe to run twice: a call already counted (its id is in the recent list) counts nothing.
local recent = P .. 'cidans:' .. A.prov .. ':' .. A.id
local stats, flags = P .. 'cidstat:' .. A.prov, P .. 'cidflag:' .. A.prov
local entry = A.call_id .. '|' .. (A.answered and '1' or '0')
if not redis.call('LPOS', recent, entry) then
  redis.call('LPUSH', recent, entry)
  redis.call('LTRIM', recent, 0, A.keep - 1)
  redis.call('HINCRBY', stats, A.id .. ':calls', 1)
  if A.answered then redis.call('HINCRBY', stats, A.id .. ':answered', 1) end
end
local n, yes = 0, 0
for _, e in ipairs(redis.call('LRANGE', recent, 0, -1)) do
  n = n + 1
  if e:sub(-2) == '|1' then yes = yes + 1 end
end
local was = redis.call('HEXISTS', flags, A.id) == 1
local now = was
if A.rate and n >= A.keep then now = yes / n < A.rate end
if not A.rate then now = false end
local changed = now ~= was
local rested = false
if changed and now then
  redis.call('HSET', flags, A.id, NOW)
  if A.rest then
    redis.call('SADD', P .. 'cidrest:' .. A.prov, A.id)
    rested = true
  end
elseif changed then
  redis.call('HDEL', flags, A.id)
end
return reply({n = n, answered = yes, flagged = now, changed = changed, rested = rested})
