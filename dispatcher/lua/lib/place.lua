-- Where a waiting job sits, and moving it there.
--   ready:<prov>:<prio>:<camp>  a list of ids per provider, priority and campaign ("~" = none)
--   rq:<prov>:<prio>            the campaigns with ready jobs, scored by their fair-share pass
--   delayed                     ids by the time they are due again
--   parked:<prov>               ids of a halted (or unconfigured) provider, oldest first
--   finishq                     ids whose result a worker must still write, leased by time
-- Ready lists are cleaned lazily: an id whose job has left the "queued" state is dropped
-- when it reaches the head, so removing a job never scans a list.

local PRIOS = {'high', 'normal', 'low'}
local LEASE_FINISH = 30000

local function camp_tag(camp) if camp and camp ~= '' then return camp end return '~' end
local function ready_key(prov, prio, camp)
  return P .. 'ready:' .. prov .. ':' .. prio .. ':' .. camp_tag(camp)
end
local function rq_key(prov, prio) return P .. 'rq:' .. prov .. ':' .. prio end

-- A campaign that had nothing ready joins the rotation at the lowest pass of the others, so
-- it neither waits behind a long campaign nor jumps ahead of it. `head`: the job goes before
-- the jobs already waiting (one taken over from a dead worker must not wait for a backlog).
local function to_ready(id, prov, prio, camp, head)
  local n = redis.call(head and 'LPUSH' or 'RPUSH', ready_key(prov, prio, camp), id)
  if n == 1 then
    local rq = rq_key(prov, prio)
    local low = redis.call('ZRANGE', rq, 0, 0, 'WITHSCORES')
    redis.call('ZADD', rq, 'NX', low[2] or 0, camp_tag(camp))
  end
end

-- Whether a provider is halted, read once per script: halting and resuming change it before
-- they move any job.
local HALTED = {}
local function halted(prov)
  local h = HALTED[prov]
  if h == nil then
    h = redis.call('EXISTS', P .. 'halt:' .. prov) == 1
    HALTED[prov] = h
  end
  return h
end

-- f: the job's fields (prov, prio, camp at least). Enters `state` with counters and timeline;
-- `detail` says why in words ("09:00 America/Chicago"), for explain and the console.
-- `fields`: more of the job's fields to write with its state, in the same HSET.
local function put(id, f, state, reason, until_ms, detail, fields)
  if state == 'queued' and halted(f.prov) then
    state, reason = 'parked', 'halted'
  end
  if state == 'queued' then
    to_ready(id, f.prov, f.prio or 'normal', f.camp, f.wr == 'reconcile')
  elseif state == 'delayed' then
    redis.call('ZADD', P .. 'delayed', until_ms, id)
  elseif state == 'parked' then
    redis.call('ZADD', P .. 'parked:' .. f.prov, NOW, id)
    if reason == 'unknown_provider' then redis.call('SADD', P .. 'unknown_providers', f.prov) end
  end
  if (state == 'delayed' or state == 'parked') and f.camp and f.camp ~= '' then
    redis.call('SADD', P .. 'cwait:' .. f.camp, id)
  end
  local kv = fields or {}
  for _, x in ipairs({'state', state, 'wr', reason or '', 'wu', until_ms and I(until_ms) or '',
                      'wd', detail or ''}) do
    kv[#kv + 1] = x
  end
  redis.call('HSET', jkey(id), unpack(kv))
  enter(f.camp, state, reason)
  ix_in(id, state, f.camp)
  if state ~= 'queued' then
    tl(id, state == 'parked' and 'parked' or 'waiting', {r = reason, u = until_ms, d = detail})
  end
end

-- Take a job out of the set it waits in (ready lists are left to lazy cleaning) and out of
-- its state's counters. f needs state, wr, prov, camp, dialer.
local function unput(id, f)
  local s = f.state
  if s == 'delayed' then redis.call('ZREM', P .. 'delayed', id)
  elseif s == 'parked' then redis.call('ZREM', P .. 'parked:' .. f.prov, id)
  elseif s == 'tracking' then redis.call('ZREM', P .. 'tracking:' .. f.prov, id)
  elseif s == 'finishing' then redis.call('ZREM', P .. 'finishq', id)
  elseif s == 'dialing' and f.dialer then redis.call('SREM', P .. 'held:' .. f.dialer, id)
  end
  if (s == 'delayed' or s == 'parked') and f.camp and f.camp ~= '' then
    redis.call('SREM', P .. 'cwait:' .. f.camp, id)
  end
  leave(f.camp, s, f.wr)
  ix_out(id, s, f.camp)
end

local function free_slots(id, f)
  redis.call('ZREM', P .. 'slots:' .. f.prov, id)
  if f.camp and f.camp ~= '' then redis.call('ZREM', P .. 'cslots:' .. f.camp, id) end
end

-- The job needs a result that only a worker can build (it reads the payload): mark it and
-- queue it; whoever asked handles it now, anyone else after the lease.
local function to_finish(id, f, why, lease)
  unput(id, f)
  redis.call('HSET', jkey(id), 'state', 'finishing', 'fin', why)
  redis.call('ZADD', P .. 'finishq', NOW + (lease or LEASE_FINISH), id)
  enter(f.camp, 'finishing')
  ix_in(id, 'finishing', f.camp)
end

local JOB_FIELDS = {'state', 'wr', 'prov', 'prio', 'camp', 'dialer', 'dtok'}
