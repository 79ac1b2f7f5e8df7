--! include core place history
-- FINISH: write results. A = {group, ttl (s), maxlen, items = [{id | nil, e (entry id) | nil,
-- result (JSON text), outcome, answer, dtok | nil, dur (the call's seconds) | nil}]}.
-- The job keeps its outcome, answer status and call duration until it expires (its page).
-- An item without an id is an unreadable payload: its marker is keyed by the entry id.
-- An item with a dtok is written only while that grant still owns the job (a worker that was
-- presumed dead must not overwrite what its successor decided).
-- Returns {written = n, skipped = [ids], done = [1 | 0 for each item]}. Safe to run twice: a job already done is skipped.
-- A done job enters the jobs list's done sets (lib/core.lua), kept as long as results: the
-- sets written are trimmed to ttl and maxlen once per call.

local FIELDS = {'state', 'wr', 'prov', 'camp', 'dialer', 'dtok', 'sl'}
local DONE_SETS = {}

local function finish_one(it)
  local h = it.id and jkey(it.id) or (P .. 'invalid:' .. it.e)
  local f = hget(h, FIELDS)
  if f.state == 'done' or (it.dtok and f.dtok ~= it.dtok) then return false end
  redis.call('XADD', P .. 'results', 'MAXLEN', '~', A.maxlen, '*', 'result', it.result)
  if it.id then
    unput(it.id, f)
    if f.prov and f.sl ~= '0' then free_slots(it.id, f) end
    redis.call('ZREM', P .. 'deadlines', it.id)
    tl(it.id, 'result', {outcome = it.outcome})
    redis.call('EXPIRE', P .. 'tl:' .. it.id, A.ttl)
    ix_in(it.id, 'done', f.camp, it.outcome)
    DONE_SETS[P .. 'jx:done'] = true
    if f.camp and f.camp ~= '' then DONE_SETS[P .. 'jx:done:' .. f.camp] = true end
    DONE_SETS[P .. 'jo:' .. it.outcome] = true
  end
  count(f.camp, 'o:' .. it.outcome, 1)
  if it.answer and it.answer ~= '' then count(f.camp, 'a:' .. it.answer, 1) end
  redis.call('HSET', h, 'state', 'done', 'done_ms', NOW, 'outcome', it.outcome)
  if it.answer and it.answer ~= '' then redis.call('HSET', h, 'answer', it.answer) end
  if it.dur then redis.call('HSET', h, 'dur', tostring(it.dur)) end
  redis.call('HDEL', h, 'fin', 'wr', 'wu', 'dialer', 'gt')
  redis.call('EXPIRE', h, A.ttl)
  return true
end

-- Older than the results' ttl, or past maxlen: out of the done sets (the campaign's and the
-- outcome's sets expire with their last job).
local function trim_done()
  for k, _ in pairs(DONE_SETS) do
    redis.call('ZREMRANGEBYSCORE', k, '-inf', NOW - A.ttl * 1000)
    redis.call('ZREMRANGEBYRANK', k, 0, -A.maxlen - 1)
    if k ~= P .. 'jx:done' then redis.call('EXPIRE', k, A.ttl) end
  end
end

DELTA = {}
local written, skipped, done, acked = 0, {}, {}, {}
for _, it in ipairs(A.items) do
  local ok = finish_one(it)
  table.insert(done, ok and 1 or 0)
  if ok then written = written + 1
  elseif it.id then table.insert(skipped, it.id) end
  if it.e then acked[#acked + 1] = it.e end
end
drop_entries(acked)
history()
flush()
trim_done()
return reply({written = written, skipped = arr(skipped), done = arr(done)})
