--! include core place rate callerid budget reserve grant dormant history
-- INGEST: stream entries become jobs, then (optionally) the first grants are taken in the
-- same call: a new job that is plainly ready costs one round trip to claim and grant.
--
-- A.group, A.ttl (s, how long a cancel-ahead marker lives), A.sleep_after (ms: a delayed job
-- due later than this sleeps, see lib/dormant.lua; default 60 s)
-- A.entries[i] = {e = entry id, id, raw, prov, prio, camp, to, dk, exp (ms, 0 = none),
--                 place = 'queued' | 'delayed' | 'parked' | 'finish', reason, due (ms), detail,
--                 deadline (ms, 0 = none), fin (why a result is due, for place = 'finish'),
--                 subj (the job's subject), sc (its own per-subject caps, JSON), rg (its region,
--                 when a registry may cover it); the last three only when the job has them}
-- A.grants = list of grant requests (see lib/grant.lua), run after the entries are placed.
-- Returns {entries = [{id, r, fin}], grants = [grant results]} where r is
--   'ok' placed | 'dup' another entry owns this id | 'done' the id already has a result |
--   'again' this entry was ingested before | 'fin' a worker must write its result now.
-- Safe to run twice: the second run finds every entry owned (r = 'again') and grants nothing
-- new for them.

local CLAIM = {'owner', 'state', 'cancelled', 'cn', 'camp'}
local ACKED = {}

local function ack(e) ACKED[#ACKED + 1] = e end

-- The job's fields as it is claimed, written with its first state (one HSET). A redriven job
-- keeps its call numbers (and calls): a new call never reuses a correlation id. A hash that
-- was there before (a cancel-ahead marker, a redriven job) may carry a TTL: it goes.
local function claim(x, f)
  local kv = {'owner', x.e, 'raw', x.raw, 'prov', x.prov, 'prio', x.prio, 'camp', x.camp or '',
              'to', x.to or '', 'dk', x.dk or '', 'exp', x.exp or 0, 'first_seen', NOW,
              'ready_since', math.max(NOW, x.ready_since or 0), 'attempts', 0, 'rd', 0}
  for _, n in ipairs({'subj', 'sc', 'rg'}) do
    if x[n] and x[n] ~= '' then
      kv[#kv + 1] = n
      kv[#kv + 1] = x[n]
    end
  end
  if not f.cn then
    kv[#kv + 1] = 'cn'
    kv[#kv + 1] = 0
  end
  if next(f) then redis.call('PERSIST', jkey(x.id)) end
  if f.state == 'redriven' then ix_out(x.id, 'redriven', f.camp) end
  count(x.camp, 'total', 1)
  if x.camp and x.camp ~= '' then
    redis.call('ZADD', P .. 'campaigns', NOW, x.camp)
    local pb = redis.call('HGET', P .. 'camp:' .. x.camp, 'paused_ms')
    if pb then
      kv[#kv + 1] = 'pause_base'
      kv[#kv + 1] = pb
    end
  end
  tl(x.id, 'claimed', {entry = x.e})
  return kv
end

local function ingest_one(x)
  local f = jget(x.id, CLAIM)
  if f.state == 'done' then ack(x.e); return 'done' end
  if f.owner and f.owner ~= x.e then ack(x.e); return 'dup' end
  if f.owner == x.e then
    if f.state == 'finishing' then return 'fin' end
    ack(x.e)
    return 'again'
  end
  local kv = claim(x, f)
  local job = {state = 'new', prov = x.prov, prio = x.prio, camp = x.camp or ''}
  local cancelled = f.cancelled == '1' or
      (x.camp and x.camp ~= '' and redis.call('SISMEMBER', P .. 'ccancel', x.camp) == 1)
  if cancelled or x.place == 'finish' then
    redis.call('HSET', jkey(x.id), unpack(kv))
    to_finish(x.id, job, cancelled and 'cancelled' or x.fin)
    ack(x.e)
    return 'fin'
  end
  put(x.id, job, x.place, x.reason, x.due, x.detail, kv)
  if x.place == 'delayed' and x.due >= NOW + (A.sleep_after or SLEEP_AFTER_MS) then
    sleep_job(x.id)
  end
  if x.deadline and x.deadline > 0 then
    redis.call('ZADD', P .. 'deadlines', x.deadline, x.id)
  end
  ack(x.e)
  return 'ok'
end

local seen = cached_reply()
if seen then return seen end
-- A namespace that never counted a job has no job the jobs list's index lacks: it is whole
-- (one stored before the index existed is not, until `dispatcher reindex --apply`).
if redis.call('EXISTS', P .. 'ixbuilt') == 0 and redis.call('EXISTS', P .. 'counts') == 0 then
  redis.call('SET', P .. 'ixbuilt', NOW)
end
DELTA = {}
local res = {}
for _, x in ipairs(A.entries) do
  local r = ingest_one(x)
  local row = {id = x.id, r = r}
  if r == 'fin' then row.fin = redis.call('HGET', jkey(x.id), 'fin') end
  table.insert(res, row)
end
drop_entries(ACKED)
local grants = {}
for _, G in ipairs(A.grants or {}) do table.insert(grants, grant(G)) end
history()
flush()
return remember(reply({entries = arr(res), grants = arr(grants)}))
