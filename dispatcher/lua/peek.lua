--! include core dormant
-- PEEK: sleeping jobs' hash fields and timelines, read without waking them (status, explain,
-- the console, erasure by number). A = {ids}. Returns {jobs = [{id, fields = {...},
-- timeline = [event JSON, ...]}]} for the ids that sleep; the others are left out.
local out = {}
for _, id in ipairs(A.ids) do
  local packed = redis.call('HGET', DORMANT, id)
  if packed then
    local f, events = unpack_sleep(packed)
    table.insert(out, {id = id, fields = f, timeline = events})
  end
end
return reply({jobs = arr(out)})
