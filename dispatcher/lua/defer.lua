--! include core place history
-- DEFER: a job goes back to wait — delayed until a time, parked, or straight back to its ready
-- list — freeing its call slot.
-- A = {id, dtok | nil, to = 'delayed' | 'parked' | 'queued', reason, until (ms), detail (words),
-- set = {field
-- = value} (attempts, last_status, last_code, unsure, calls, cn, rd, ready_since ...),
-- deadline (ms, 0 = none), refund_rate (bool), refund_number (bool)}.
-- A dtok, when given, must still own the job. refund_* take the grant's entries back out of
-- the provider's log / the number's log: only for requests that surely never started a call.
-- Returns 1, or 0 when the job is done or no longer owned. Safe to run twice: the second run
-- finds the job already waiting and places it the same way.

local f = hget(jkey(A.id), {'state', 'wr', 'prov', 'prio', 'camp', 'dialer', 'dtok', 'rtok',
                            'to'})
if not f.state or f.state == 'done' then return reply(0) end
if A.dtok and f.dtok ~= A.dtok then return reply(0) end
if A.refund_rate and f.rtok then redis.call('ZREM', P .. 'rl:' .. f.prov, f.rtok) end
if A.refund_number and f.dtok and f.to and f.to ~= '' then
  redis.call('ZREM', P .. 'num:' .. f.to, f.dtok)
end
DELTA = {}
unput(A.id, f)
free_slots(A.id, f)
local set = {}
for k, v in pairs(A.set or {}) do
  set[#set + 1] = k
  set[#set + 1] = tostring(v)
end
if #set > 0 then redis.call('HSET', jkey(A.id), unpack(set)) end
redis.call('HDEL', jkey(A.id), 'dialer', 'dtok', 'rtok', 'gt')
put(A.id, f, A.to, A.reason, A['until'], A.detail)
if A.deadline and A.deadline > 0 then redis.call('ZADD', P .. 'deadlines', A.deadline, A.id) end
history()
flush()
return reply(1)
