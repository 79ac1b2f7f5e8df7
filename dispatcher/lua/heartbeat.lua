--! include core place
-- HEARTBEAT: this worker is alive; take over the work of workers that are not.
-- A = {group, consumer, held = [ids this process is dialling], dead (ms without a heartbeat),
--      stale (ms), settle = {prov = ms},
--      margins = {prov = ms: the largest lag this worker could not place in the log},
--      visiting = [ids of the live calls this process is polling now],
--      visited = [ids whose visits ended since the last heartbeat] (given: VISIT adds what it
--      leases to the set, and only ended visits leave it; absent: the set is `visiting`),
--      info = {host, pid, version, started, concurrency} (optional: what the Workers page
--      shows of this worker, kept with its dials in flight and calls polled at this beat)}.
-- * A consumer whose last heartbeat is older than `dead` is gone: every job it was dialling
--   waits for a reconciliation (the call may exist) that starts once the request could no
--   longer be on its way (its latest grant + settle: a regranted "unsure" job may send long
--   after its first dial), its unread stream entries are claimed by this
--   worker, and it is removed from the group. The calls it was polling are due again at once
--   (not when their visit lease ends).
-- * A job this worker's own record says it dials but the process does not hold (a grant whose
--   reply was lost) is reconciled the same way once its latest grant is `stale` ms old (not
--   its first dial: a reply on its way for a fresh grant of an old dial is not lost).
-- * A reaped consumer leaves one entry in the bounded `reaped` stream: who it was (its info),
--   who took it over, and how many dials, stream entries and polled calls were taken over.
-- Returns {reaped = [consumers], reconciled = n, claimed = n, revisit = n}. Safe to run twice.

local FIELDS = {'state', 'wr', 'prov', 'prio', 'camp', 'dialer', 'dial_ms', 'gt'}

-- When the job was last granted (a hash from before `gt` was kept: its dial).
local function granted_at(f)
  return tonumber(f.gt or f.dial_ms or NOW)
end

local function reconcile(id, f, from)
  local settle = A.settle[f.prov] or 11000
  unput(id, f)
  redis.call('HSET', jkey(id), 'unsure', '1')
  redis.call('HDEL', jkey(id), 'dialer', 'gt')
  put(id, f, 'delayed', 'reconcile', granted_at(f) + settle)
  -- the provider's next grant moves it to the head of its list the moment it is due,
  -- before that grant's new dials (promotion runs only every promote_interval_s)
  redis.call('ZADD', P .. 'recon:' .. f.prov, granted_at(f) + settle, id)
  tl(id, 'taken_over', {from = from})
end

local function release_held(consumer, keep, min_age)
  local n = 0
  local hk = P .. 'held:' .. consumer
  for _, id in ipairs(redis.call('SMEMBERS', hk)) do
    if not keep[id] then
      local f = hget(jkey(id), FIELDS)
      if f.state ~= 'dialing' or f.dialer ~= consumer then
        redis.call('SREM', hk, id)
      elseif NOW - granted_at(f) >= min_age then
        reconcile(id, f, consumer)
        n = n + 1
      end
    end
  end
  return n
end

local function claim_pending(c)
  local p = redis.pcall('XPENDING', KEYS[1], A.group, '-', '+', 1000, c)
  if p.err then return 0, true end  -- no group (yet): nothing of c's to claim
  local ids = {}
  for _, e in ipairs(p) do table.insert(ids, e[1]) end
  if #ids > 0 then
    redis.call('XCLAIM', KEYS[1], A.group, A.consumer, 0, unpack(ids))
  end
  return #ids, #p < 1000
end

-- The calls a dead consumer was polling: due again now, so they wait neither for its lease.
local function release_visits(c)
  local vk = P .. 'visiting:' .. c
  local n = 0
  for _, id in ipairs(redis.call('SMEMBERS', vk)) do
    local f = hget(jkey(id), {'state', 'prov'})
    if f.state == 'tracking' and f.prov then
      n = n + redis.call('ZADD', P .. 'tracking:' .. f.prov, 'XX', 'LT', 'CH', NOW, id)
    end
  end
  redis.call('DEL', vk)
  return n
end

local INFO_MS = 86400000  -- a dead worker nobody reaps keeps its info this long
local REAPED_MAX = 200

-- What a dead consumer's takeover moved, added up over the beats it takes (claims go in
-- pages of 1000), then written to the `reaped` stream when it is gone.
local function taken(c, reconciled, revisit, claimed)
  local ik = P .. 'worker:' .. c
  redis.call('HINCRBY', ik, 'took_dials', reconciled)
  redis.call('HINCRBY', ik, 'took_polls', revisit)
  redis.call('HINCRBY', ik, 'took_entries', claimed)
  redis.call('PEXPIRE', ik, INFO_MS)
end

local function reaped(c)
  local ik = P .. 'worker:' .. c
  local f = hget(ik, {'host', 'pid', 'version', 'started', 'beat', 'took_dials',
                      'took_polls', 'took_entries'})
  redis.call('XADD', P .. 'reaped', 'MAXLEN', '~', REAPED_MAX, '*', 'consumer', c,
             'by', A.consumer, 'at', NOW, 'host', f.host or '', 'pid', f.pid or '',
             'version', f.version or '', 'started', f.started or '', 'beat', f.beat or '',
             'dials', f.took_dials or 0, 'polls', f.took_polls or 0,
             'entries', f.took_entries or 0)
  redis.call('DEL', ik)
end

-- What this worker says of itself, and its dials and polls now (the Workers page).
local function publish(vk)
  local ik = P .. 'worker:' .. A.consumer
  if A.info then
    redis.call('HSET', ik, 'host', A.info.host, 'pid', A.info.pid, 'version', A.info.version,
               'started', A.info.started, 'concurrency', A.info.concurrency)
  end
  redis.call('HSET', ik, 'beat', NOW, 'inflight', #A.held, 'polling', redis.call('SCARD', vk))
  redis.call('PEXPIRE', ik, INFO_MS)
end

redis.call('ZADD', P .. 'consumers', NOW, A.consumer)
local vk = P .. 'visiting:' .. A.consumer
if A.visited == nil then
  redis.call('DEL', vk)
elseif #A.visited > 0 then
  redis.call('SREM', vk, unpack(A.visited))
end
if A.visiting and #A.visiting > 0 then redis.call('SADD', vk, unpack(A.visiting)) end
redis.call('PEXPIRE', vk, A.dead * 10)
publish(vk)
for prov, ms in pairs(A.margins or {}) do
  redis.call('ZADD', P .. 'margin:' .. prov, ms, A.consumer)
end
local mine = {}
for _, id in ipairs(A.held) do mine[id] = true end
local out = {reaped = {}, reconciled = release_held(A.consumer, mine, A.stale), claimed = 0,
             revisit = 0}
local dead = redis.call('ZRANGEBYSCORE', P .. 'consumers', '-inf', NOW - A.dead)
for _, c in ipairs(dead) do
  if c ~= A.consumer then
    local dials, polls = release_held(c, {}, 0), release_visits(c)
    local n, all = claim_pending(c)
    out.reconciled, out.revisit = out.reconciled + dials, out.revisit + polls
    out.claimed = out.claimed + n
    taken(c, dials, polls, n)
    if all then
      reaped(c)
      for prov, _ in pairs(A.margins or {}) do redis.call('ZREM', P .. 'margin:' .. prov, c) end
      redis.call('DEL', P .. 'held:' .. c)
      redis.pcall('XGROUP', 'DELCONSUMER', KEYS[1], A.group, c)
      redis.call('ZREM', P .. 'consumers', c)
      table.insert(out.reaped, c)
    end
  end
end
out.reaped = arr(out.reaped)
return reply(out)
