--! include core
-- WEBHOOK: record a call's end once per event id and make its job due for a visit now.
-- A = {event_id, call_id, ttl (s), fields = {name = value}}. Returns 1 (recorded, job woken),
-- 0 (recorded, no job tracks that call), -1 (a duplicate delivery). Safe to run twice.
if not redis.call('SET', P .. 'event:' .. A.event_id, '1', 'NX', 'EX', A.ttl) then
  return reply(-1)
end
local hk = P .. 'callend:' .. A.call_id
for k, v in pairs(A.fields) do redis.call('HSET', hk, k, tostring(v)) end
redis.call('EXPIRE', hk, A.ttl)
local job = redis.call('GET', P .. 'call:' .. A.call_id)
if job then
  local prov = redis.call('HGET', jkey(job), 'prov') or ''
  redis.call('ZADD', P .. 'tracking:' .. prov, 'XX', 0, job)
  tl(job, 'webhook', {event = A.event_id})
  return reply(1)
end
return reply(0)
