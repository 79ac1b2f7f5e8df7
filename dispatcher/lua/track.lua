--! include core place history
-- TRACK: started calls enter tracking.
-- A = {items = [{id, dtok, call_id, first_ms, ttl, attempts, from (the caller ID used)}]}.
-- The call exists whatever else happened, so it is adopted unless the job is done; a job
-- already tracking this call is left as it is (safe to run twice). A job tracking another
-- call is reported as a conflict and left alone.
-- Returns {tracked = [ids], conflicts = [{id, call_id, other}]}.

local FIELDS = {'state', 'wr', 'prov', 'camp', 'dialer', 'dtok', 'calls', 'call_id', 'cn'}

local function track_one(it, out)
  local h = jkey(it.id)
  local f = hget(h, FIELDS)
  if not f.state or f.state == 'done' then return end
  if f.state == 'tracking' then
    if f.call_id ~= it.call_id then
      table.insert(out.conflicts, {id = it.id, call_id = it.call_id, other = f.call_id})
    end
    return
  end
  unput(it.id, f)
  local calls = cjson.decode(f.calls or '[]')
  table.insert(calls, {call_id = it.call_id, started_ms = NOW, from = it.from})
  redis.call('HSET', h, 'state', 'tracking', 'call_id', it.call_id, 'track_ms', NOW,
             'calls', cjson.encode(calls), 'unsure', '', 'attempts', it.attempts or 1)
  redis.call('HDEL', h, 'dialer', 'wr', 'wu', 'gt')
  redis.call('ZADD', P .. 'tracking:' .. f.prov, NOW + it.first_ms, it.id)
  redis.call('SET', P .. 'call:' .. it.call_id, it.id, 'EX', it.ttl)
  enter(f.camp, 'tracking')
  ix_in(it.id, 'tracking', f.camp)
  count(f.camp, 'calls', 1)
  tl(it.id, 'dialled', {call_id = it.call_id, call = tonumber(f.cn or '1')})
  table.insert(out.tracked, it.id)
end

DELTA = {}
local out = {tracked = {}, conflicts = {}}
for _, it in ipairs(A.items) do track_one(it, out) end
history()
flush()
return reply({tracked = arr(out.tracked), conflicts = arr(out.conflicts)})
