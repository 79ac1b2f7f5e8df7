--! include core place dormant
-- FORGET: erase what the dispatcher holds about people (a right-to-erasure request).
-- A = {group, ids = [job ids], numbers = [E.164], patterns = [Lua patterns: each number's
--      national digits with any separators between them], results = [results entry ids],
--      entries = [{e = jobs-stream entry id, id (absent: none could be read)}], replies =
--      [cached grant reply keys naming them], after_results, after_jobs (the last entry ids
--      the caller scanned: later entries are matched here, up to `tail` of each, by id or by
--      a number's digits anywhere in them), tail, fence (s)}.
-- Per job: its hash, timeline, call records (call:<id>, callend:<id>), its number's log, its
-- subject's log (subj:<subject>, named after the person) and its place in each worker's held /
-- visiting set go;
-- it leaves its waiting set, ready list and counters. A job being dialled, tracked or
-- finished (a worker may still write for it) keeps a bare fence instead of its hash for
-- `fence` seconds ({state = done, outcome = erased}), so nothing is written back for it.
-- Results entries of these jobs and stream entries (payloads not yet ingested) carrying
-- these ids or numbers are deleted; a pending entry fences its id the same way.
-- The do-not-call set is never touched. Aggregate counters (totals, outcomes) stay.
-- Returns {jobs = [ids erased], fenced = [ids], unknown = [ids], timelines, calls, results,
-- entries, number_logs, subject_logs, more (the tail held more than `tail` entries: scan
-- again)}.
-- Safe to run twice: erased things are gone and a fence is never rewritten.

local FIELDS = {'state', 'wr', 'prov', 'prio', 'camp', 'dialer', 'to', 'calls', 'call_id',
                'erased', 'owner', 'cancelled', 'subj', 'outcome'}
local LIVE = {dialing = true, tracking = true, finishing = true}
local out = {jobs = {}, fenced = {}, unknown = {}, timelines = 0, calls = 0, results = 0,
             entries = 0, number_logs = 0, subject_logs = 0, more = false}
local ids, numbers, subjects, queued = {}, {}, {}, {}
for _, id in ipairs(A.ids) do ids[id] = true end
for _, n in ipairs(A.numbers) do numbers[n] = true end

local function fence(id)
  local h = jkey(id)
  redis.call('HSET', h, 'state', 'done', 'outcome', 'erased', 'erased', '1')
  redis.call('EXPIRE', h, A.fence)
end

local function drop_calls(f)
  local seen = {}
  if f.call_id and f.call_id ~= '' then seen[f.call_id] = true end
  local ok, calls = pcall(cjson.decode, f.calls or '[]')
  if ok and type(calls) == 'table' then
    for _, c in ipairs(calls) do
      if type(c) == 'table' and c.call_id then seen[tostring(c.call_id)] = true end
    end
  end
  for cid, _ in pairs(seen) do
    out.calls = out.calls + redis.call('DEL', P .. 'call:' .. cid, P .. 'callend:' .. cid)
  end
end

-- the sets that name it per worker (what each dials and polls) forget it too
local CONSUMERS
local function drop_from_workers(id)
  CONSUMERS = CONSUMERS or redis.call('ZRANGE', P .. 'consumers', 0, -1)
  for _, c in ipairs(CONSUMERS) do
    redis.call('SREM', P .. 'held:' .. c, id)
    redis.call('SREM', P .. 'visiting:' .. c, id)
  end
end

local function forget_job(id)
  local f = jget(id, FIELDS)
  if f.erased == '1' then return end
  out.timelines = out.timelines + redis.call('DEL', P .. 'tl:' .. id)
  if not f.state and not f.owner and not f.cancelled then
    if not queued[id] then table.insert(out.unknown, id) end
    return
  end
  if f.to and f.to ~= '' then numbers[f.to] = true end
  if f.subj and f.subj ~= '' then subjects[f.subj] = true end
  drop_calls(f)
  unput(id, f)
  if f.state == 'done' or f.state == 'redriven' or f.state == 'orphaned' then
    ix_out(id, f.state, f.camp, f.state == 'done' and f.outcome or nil)
  end
  if f.state == 'queued' and f.prov then
    redis.call('LREM', ready_key(f.prov, f.prio or 'normal', f.camp), 0, id)
  end
  -- a call that may be live keeps its slot lease until the lease runs out
  if f.prov and f.state ~= 'dialing' and f.state ~= 'tracking' then free_slots(id, f) end
  redis.call('ZREM', P .. 'deadlines', id)
  redis.call('SREM', P .. 'orphans', id)
  drop_from_workers(id)
  redis.call('DEL', jkey(id))
  if LIVE[f.state or ''] then
    fence(id)
    table.insert(out.fenced, id)
  else
    table.insert(out.jobs, id)
  end
end

local function pending(e)
  local p = redis.pcall('XPENDING', KEYS[1], A.group, 'IDLE', 0, e, e, 1)
  return type(p) == 'table' and #p > 0
end

-- A payload not yet ingested; a worker that read it may still ingest it: fence its id.
local function forget_entry(e, id)
  if id then
    queued[id] = true
    wake(id)  -- a sleeping job of that id is erased below, not fenced here
  end
  if pending(e) then
    redis.call('XACK', KEYS[1], A.group, e)
    if id and redis.call('EXISTS', jkey(id)) == 0 then
      fence(id)
      table.insert(out.fenced, id)
    end
  end
  out.entries = out.entries + redis.call('XDEL', KEYS[1], e)
end

local function payload(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'job' then
      local ok, job = pcall(cjson.decode, fields[i + 1])
      if ok and type(job) == 'table' then return job end
    end
  end
  return {}
end

-- True when `text` holds one of the numbers' digits (not followed by another digit), in any
-- spelling: the caller matched exactly what it scanned; this is for entries added since.
local function names_number(text)
  for _, pat in ipairs(A.patterns or {}) do
    local init = 1
    while true do
      local s, e = string.find(text, pat, init)
      if not s then break end
      if not string.find(string.sub(text, e + 1, e + 1), '%d') then return true end
      init = s + 1
    end
  end
  return false
end

-- Entries added after the caller's scan: match them here, atomically with the erasure.
local function tail(key, after)
  local es = redis.call('XRANGE', key, '(' .. after, '+', 'COUNT', A.tail + 1)
  if #es > A.tail then out.more = true end
  return es
end

local function job_tail()
  for _, e in ipairs(tail(KEYS[1], A.after_jobs)) do
    local job = payload(e[2])
    local id = type(job.id) == 'string' and job.id or nil
    local raw = e[2][2] or ''
    if (id and ids[id]) or (type(job.to) == 'string' and numbers[job.to])
        or names_number(raw) then
      if id then ids[id] = true end
      forget_entry(e[1], id)
    end
  end
end

local function result_tail()
  for _, e in ipairs(tail(P .. 'results', A.after_results)) do
    local ok, r = pcall(cjson.decode, e[2][2] or '')
    if (ok and type(r) == 'table' and type(r.job_id) == 'string' and ids[r.job_id])
        or names_number(e[2][2] or '') then
      out.results = out.results + redis.call('XDEL', P .. 'results', e[1])
    end
  end
end

for _, x in ipairs(A.entries) do forget_entry(x.e, x.id) end
job_tail()
for id, _ in pairs(ids) do forget_job(id) end
for _, e in ipairs(A.results) do
  out.results = out.results + redis.call('XDEL', P .. 'results', e)
end
result_tail()
for _, k in ipairs(A.replies or {}) do  -- cached grant replies (5 s) that carry a payload
  if string.sub(k, 1, #P + 6) == P .. 'reply:' then redis.call('DEL', k) end
end
for n, _ in pairs(numbers) do
  out.number_logs = out.number_logs + redis.call('DEL', P .. 'num:' .. n)
end
for subj, _ in pairs(subjects) do  -- the whole log: its key names the person
  out.subject_logs = out.subject_logs + redis.call('DEL', P .. 'subj:' .. subj)
end
out.jobs, out.fenced, out.unknown = arr(out.jobs), arr(out.fenced), arr(out.unknown)
return reply(out)
