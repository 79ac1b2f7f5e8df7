--! include core dormant
-- REINDEX: jobs stored by a version without the jobs list's index (lib/core.lua) join it.
-- A = {ids = [...], dry (bool: count only)}. Each id whose hash exists, or that sleeps packed
-- in `dormant` (listed as delayed, as JOBLIST reads it), is added to the sets its state,
-- campaign and outcome call for wherever it is missing, scored by the best time its fields
-- give for entering that state (else NOW). An entry already there keeps its score. A
-- campaign's or an outcome's done set it adds to expires no sooner than the job.
-- Returns {seen (jobs found in a listed state), added (jobs that lacked an entry), entries
-- (entries added, or missing when dry)}.
-- Safe to run twice: the second run finds every entry there and adds nothing.

local FIELDS = {'state', 'camp', 'outcome', 'ready_since', 'first_seen', 'gt', 'dial_ms',
                'track_ms', 'done_ms'}
-- The fields that say when a job entered each state, best first; '@tl': its last timeline
-- event, when that event is the one the state began with (TL_EVENT).
local STAMPS = {queued = {'ready_since', 'first_seen'}, delayed = {'@tl', 'first_seen'},
                parked = {'@tl', 'first_seen'}, dialing = {'gt', 'dial_ms'},
                tracking = {'track_ms'}, done = {'done_ms'}, redriven = {'@tl'}}
local TL_EVENT = {delayed = 'waiting', parked = 'parked', redriven = 'redriven'}

local function from_timeline(id, state)
  local last = redis.call('LINDEX', P .. 'tl:' .. id, -1)
  if not last then return nil end
  local ok, e = pcall(cjson.decode, last)
  if ok and type(e) == 'table' and e.e == TL_EVENT[state] then return tonumber(e.t) end
  return nil
end

local function since(id, f)
  for _, name in ipairs(STAMPS[f.state] or {}) do
    local t
    if name == '@tl' then t = from_timeline(id, f.state) else t = tonumber(f[name] or '') end
    if t and t > 0 then return t end
  end
  return NOW
end

-- The sets a job belongs in, per lib/core.lua's ix_in.
local function sets_of(f)
  local k = P .. 'jx:' .. f.state
  local out = {k}
  if f.camp and f.camp ~= '' then out[#out + 1] = k .. ':' .. f.camp end
  if f.state == 'done' and f.outcome and f.outcome ~= '' then
    out[#out + 1] = P .. 'jo:' .. f.outcome
  end
  return out
end

-- A done set of one campaign or outcome lives as long as its longest-lived job.
local function keep_done_set(key, id)
  if key == P .. 'jx:done' then return end
  local left = redis.call('PTTL', jkey(id))
  if left <= 0 then return end
  local has = redis.call('PTTL', key)
  if has == -1 or has < left then redis.call('PEXPIRE', key, left) end
end

local function reindex_one(id, out)
  local f = hget(jkey(id), FIELDS)
  if not f.state then  -- asleep (no timeline: its time is first_seen), or gone
    local packed = redis.call('HGET', DORMANT, id)
    if not packed then return end
    f = unpack_sleep(packed)
  end
  if not IX_STATES[f.state] then return end
  out.seen = out.seen + 1
  local score, missing = nil, 0
  for _, key in ipairs(sets_of(f)) do
    if not redis.call('ZSCORE', key, id) then
      missing = missing + 1
      if not A.dry then
        score = score or since(id, f)
        redis.call('ZADD', key, 'NX', score, id)
        if f.state == 'done' then keep_done_set(key, id) end
      end
    end
  end
  out.entries = out.entries + missing
  if missing > 0 then out.added = out.added + 1 end
end

local out = {seen = 0, added = 0, entries = 0}
for _, id in ipairs(A.ids) do reindex_one(id, out) end
return reply(out)
