-- Shared by every script: arguments, clock, job-state bookkeeping, timeline.
--
-- Every script is called with KEYS[1] = the namespace's jobs stream (it only routes the call
-- to the node that owns the namespace's one hash slot) and ARGV[1] = a JSON object of named
-- arguments. A.p is the key prefix "{ns}:"; every key a script touches starts with it, so all
-- of them live in the same Cluster slot. A.now (ms) pins the clock for tests; otherwise the
-- script reads Redis TIME, so every worker shares one clock.

local A = cjson.decode(ARGV[1])
local P = A.p
local NOW
if A.now then
  NOW = tonumber(A.now)
else
  local t = redis.call('TIME')
  NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function I(x) return string.format('%d', x) end

-- JSON arrays that stay arrays when empty (cjson encodes an empty table as {}).
local EMPTY = cjson.decode('[]')
local function arr(t) if #t == 0 then return EMPTY end return t end
local function reply(t) return cjson.encode(t) end

local function jkey(id) return P .. 'job:' .. id end

-- Counters: one hash per campaign and one for the whole namespace, changed by the same
-- script that changes a job's state, so they never drift from the jobs themselves.
-- A script that handles a batch sets DELTA = {} first and calls flush() before it returns:
-- its changes are summed and written once per counter, not once per job (every redis.call
-- costs about a microsecond of Redis's time on its own). Other scripts write at once.
local DELTA
local function bump(key, field, by, ttl)
  if not DELTA then
    redis.call('HINCRBY', key, field, by)
    if ttl then redis.call('EXPIRE', key, ttl) end
    return
  end
  local d = DELTA[key]
  if not d then
    d = {fields = {}, ttl = ttl}
    DELTA[key] = d
  end
  d.fields[field] = (d.fields[field] or 0) + by
end

-- The jobs list's index (below) is batched the same way: per set, each id's last change (a
-- score to add it with, or false to remove it), written as one ZADD and one ZREM per set.
local IX = {}
local function ix_set(key, id, score)
  if not DELTA then
    if score then redis.call('ZADD', key, score, id) else redis.call('ZREM', key, id) end
    return
  end
  local m = IX[key]
  if not m then
    m = {}
    IX[key] = m
  end
  m[id] = score
end

local IX_CHUNK = 2000  -- ids per command (Lua's unpack has a stack limit)
local function ix_flush()
  for key, m in pairs(IX) do
    local adds, rems = {}, {}
    for id, score in pairs(m) do
      if score then
        adds[#adds + 1] = score
        adds[#adds + 1] = id
      else
        rems[#rems + 1] = id
      end
    end
    for i = 1, #adds, 2 * IX_CHUNK do
      redis.call('ZADD', key, unpack(adds, i, math.min(#adds, i + 2 * IX_CHUNK - 1)))
    end
    for i = 1, #rems, IX_CHUNK do
      redis.call('ZREM', key, unpack(rems, i, math.min(#rems, i + IX_CHUNK - 1)))
    end
  end
  IX = {}
end

local function flush()
  for key, d in pairs(DELTA or {}) do
    for field, by in pairs(d.fields) do
      if by ~= 0 then redis.call('HINCRBY', key, field, by) end
    end
    if d.ttl then redis.call('EXPIRE', key, d.ttl) end
  end
  DELTA = DELTA and {}
  ix_flush()
end

local function count(camp, field, by)
  bump(P .. 'counts', field, by)
  if camp and camp ~= '' then bump(P .. 'camp:' .. camp, field, by) end
end

local STATE_FIELD = {queued = 'queued', delayed = 'delayed', parked = 'parked',
                     dialing = 'dialing', tracking = 'live', finishing = 'finishing'}

local function leave(camp, state, reason)
  local f = STATE_FIELD[state or '']
  if not f then return end
  count(camp, f, -1)
  if (state == 'delayed' or state == 'parked') and reason and reason ~= '' then
    count(camp, 'w:' .. reason, -1)
  end
end

local function enter(camp, state, reason)
  local f = STATE_FIELD[state]
  if not f then return end
  count(camp, f, 1)
  if (state == 'delayed' or state == 'parked') and reason and reason ~= '' then
    count(camp, 'w:' .. reason, 1)
  end
end

-- The jobs list's index (the console, `cancel`/`redrive` by filter): one sorted set per state
-- and one per state and campaign, ids scored by when they entered the state; done jobs also
-- by outcome. Two ZADDs / ZREMs per state change (one per set per batch in INGEST, GRANT and
-- FINISH); done sets are trimmed by FINISH.
local IX_STATES = {queued = true, delayed = true, parked = true, dialing = true,
                   tracking = true, finishing = true, done = true, redriven = true,
                   orphaned = true}
-- score: NOW when a job enters the state, false when it leaves it
local function ix_mark(id, state, camp, outcome, score)
  if not IX_STATES[state or ''] then return end
  local k = P .. 'jx:' .. state
  ix_set(k, id, score)
  if camp and camp ~= '' then ix_set(k .. ':' .. camp, id, score) end
  if outcome and outcome ~= '' then ix_set(P .. 'jo:' .. outcome, id, score) end
end

local function ix_in(id, state, camp, outcome) ix_mark(id, state, camp, outcome, NOW) end
local function ix_out(id, state, camp, outcome) ix_mark(id, state, camp, outcome, false) end

-- A capped per-job history; it expires with the job (FINISH sets both TTLs).
local TL_CAP = 60
local function tl(id, event, extra)
  local e = extra or {}
  e.t = NOW
  e.e = event
  local k = P .. 'tl:' .. id
  if redis.call('RPUSH', k, cjson.encode(e)) > TL_CAP then redis.call('LTRIM', k, -TL_CAP, -1) end
end

-- Stream entries a script is done with (ingested, or their result written): acked for the
-- group and deleted, one XACK and one XDEL for the whole batch.
local function drop_entries(ids)
  if #ids == 0 then return end
  redis.call('XACK', KEYS[1], A.group, unpack(ids))
  redis.call('XDEL', KEYS[1], unpack(ids))
end

-- Read named fields of a hash into a table (missing fields are nil, not false).
local function hget(key, names)
  local vals = redis.call('HMGET', key, unpack(names))
  local out = {}
  for i, n in ipairs(names) do
    if vals[i] then out[n] = vals[i] end
  end
  return out
end

-- A call that grants (INGEST, GRANT) is not naturally idempotent: run again after a lost
-- reply, it would pop other jobs. Such calls carry a request id; the reply is kept for
-- A.reply_ms (longer than the client's retries) and a second run returns it unchanged.
local function cached_reply()
  if not A.rid then return nil end
  return redis.call('GET', P .. 'reply:' .. A.rid)
end

local function remember(encoded)
  if A.rid then redis.call('SET', P .. 'reply:' .. A.rid, encoded, 'PX', A.reply_ms or 5000) end
  return encoded
end
