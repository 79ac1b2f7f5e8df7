--! include core
-- VISIT: lease the tracked jobs that are due to this worker (pushing their score ahead) and
-- return what a visit needs, webhook results included, in one round trip.
-- A = {provs = [provider names], lease (ms), limit, consumer (optional: the leased ids join
-- its visiting set at once, so its death frees them even before its next heartbeat)}.
-- Returns {visits = [{id, state, raw, call_id, attempts, first_seen,
-- track_ms, calls, cn, rd, prov, camp, visits, hook = {...} | nil}]}.
local FIELDS = {'state', 'raw', 'call_id', 'attempts', 'first_seen', 'track_ms', 'calls', 'cn',
                'rd', 'prov', 'camp', 'cancelled'}
local out = {}
local ids = {}
for _, prov in ipairs(A.provs) do
  local tk = P .. 'tracking:' .. prov
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', tk, '-inf', NOW, 'LIMIT', 0,
                                 A.limit - #ids)) do
    redis.call('ZADD', tk, NOW + A.lease, id)
    table.insert(ids, id)
  end
end
if A.consumer and #ids > 0 then
  local vk = P .. 'visiting:' .. A.consumer
  redis.call('SADD', vk, unpack(ids))
  redis.call('PEXPIRE', vk, A.lease * 2)
end
for _, id in ipairs(ids) do
  local f = hget(jkey(id), FIELDS)
  f.id = id
  f.visits = redis.call('HINCRBY', jkey(id), 'visits', 1)
  if f.call_id then
    local hook = redis.call('HGETALL', P .. 'callend:' .. f.call_id)
    if #hook > 0 then
      local h = {}
      for i = 1, #hook, 2 do h[hook[i]] = hook[i + 1] end
      f.hook = h
    end
  end
  table.insert(out, f)
end
return reply({visits = arr(out)})
