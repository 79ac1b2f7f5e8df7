--! include core dormant
-- JOBLIST: one page of the jobs list, read from the index sets (lib/core.lua), never by a
-- scan of every job. A = {state, camp, outcome, prov, prio, wr (filters; all but state
-- optional), lo, hi (ms, the time the job entered its state; optional), asc (oldest first),
-- cur = {s, k} (where the last page stopped: a score and how many ids of that score were
-- looked at), n (rows wanted), budget (ids looked at, at most)}.
-- The set read is the state's (and campaign's) or, for done jobs of one outcome, the
-- smaller of that and the outcome's; the other filters are checked per job, so a page of a
-- rare filter may come back short with a cursor to go on from.
-- Returns {rows = [{id, since, fields...}], next = {s, k} | nil, total (ids in the set
-- read within lo..hi), exact (total counts matches: no filter was checked per job), seen}.
-- Reads only: safe to run twice.

local FIELDS = {'state', 'prov', 'prio', 'camp', 'wr', 'wd', 'wu', 'outcome', 'first_seen',
                'attempts', 'to'}
local CHUNK = 200

local function pick_set()
  local key = P .. 'jx:' .. A.state
  if A.camp and A.camp ~= '' then key = key .. ':' .. A.camp end
  local by_camp = A.camp and A.camp ~= ''
  if A.state == 'done' and A.outcome and A.outcome ~= '' then
    local ok = P .. 'jo:' .. A.outcome
    if redis.call('ZCARD', ok) < redis.call('ZCARD', key) then return ok, by_camp, false end
    return key, false, true
  end
  return key, false, false
end

local KEY, CHECK_CAMP, CHECK_OUTCOME = pick_set()
local LO = A.lo and I(A.lo) or '-inf'
local HI = A.hi and I(A.hi) or '+inf'

local function fields_of(id)
  local f = hget(jkey(id), FIELDS)
  if not f.state then
    local packed = redis.call('HGET', DORMANT, id)
    if packed then f = unpack_sleep(packed) end
  end
  return f
end

local function wanted(f)
  if f.state ~= A.state then return false end  -- moved on since (or gone): not listed
  if A.prov and A.prov ~= '' and f.prov ~= A.prov then return false end
  if A.prio and A.prio ~= '' and (f.prio or 'normal') ~= A.prio then return false end
  if A.wr and A.wr ~= '' and f.wr ~= A.wr then return false end
  if CHECK_OUTCOME and f.outcome ~= A.outcome then return false end
  if CHECK_CAMP and f.camp ~= A.camp then return false end
  return true
end

local function chunk(cur_s, cur_k)
  if A.asc then
    return redis.call('ZRANGEBYSCORE', KEY, cur_s and I(cur_s) or LO, HI, 'WITHSCORES',
                      'LIMIT', cur_k, CHUNK)
  end
  return redis.call('ZREVRANGEBYSCORE', KEY, cur_s and I(cur_s) or HI, LO, 'WITHSCORES',
                    'LIMIT', cur_k, CHUNK)
end

local rows, seen, more = {}, 0, true
local cur_s, cur_k = A.cur and tonumber(A.cur.s), A.cur and tonumber(A.cur.k) or 0
while #rows < A.n and seen < A.budget and more do
  local got = chunk(cur_s, cur_k)
  more = #got == 2 * CHUNK
  for i = 1, #got, 2 do
    local id, sc = got[i], tonumber(got[i + 1])
    if sc == cur_s then cur_k = cur_k + 1 else cur_s, cur_k = sc, 1 end
    seen = seen + 1
    local f = fields_of(id)
    if wanted(f) then
      f.id, f.since = id, sc
      rows[#rows + 1] = f
    end
    if #rows >= A.n or seen >= A.budget then
      more = more or i + 1 < #got
      break
    end
  end
end
local exact = not (CHECK_CAMP or CHECK_OUTCOME or (A.prov and A.prov ~= '')
                   or (A.prio and A.prio ~= '') or (A.wr and A.wr ~= ''))
return reply({rows = arr(rows), next = more and {s = cur_s, k = cur_k} or nil,
              total = redis.call('ZCOUNT', KEY, LO, HI), exact = exact, seen = seen})
