-- History for the console's charts (store/history.py reads it): per-minute counts of results
-- by outcome (o:<outcome>), calls started (calls) and waits entered by reason (w:<reason>),
-- for the namespace (scope *) and for each campaign. 429s are counted by the worker that
-- got them (store/history.py), the only one that knows.
--
-- history() runs just before flush() and takes its counts from DELTA, the counter changes the
-- script is about to write, so it counts exactly what the job counters count: a replayed call
-- that changes no counter adds nothing, and a wait left and entered again in one call nets 0.
-- Two hashes per scope and metric, each expiring 7 days after the period it covers, so the
-- history cannot grow past 7 days of keys whatever the traffic:
--   histm:<scope>:<metric>:<epoch hour>  minute of the hour (0-59) -> count
--   histh:<scope>:<metric>:<epoch day>   hour of the day (0-23) -> count (the 24 h, 7 d charts)
local HIST_KEEP_MS = 7 * 86400000

local function hist_scope(key)
  if key == P .. 'counts' then return '*' end
  local cp = P .. 'camp:'
  if key:sub(1, #cp) == cp then return key:sub(#cp + 1) end
  return nil
end

local function hist_counted(field)
  local kind = field:sub(1, 2)
  return field == 'calls' or kind == 'o:' or kind == 'w:'
end

local function history()
  local add = {}
  for key, d in pairs(DELTA or {}) do
    local scope = hist_scope(key)
    if scope then
      for field, by in pairs(d.fields) do
        if by > 0 and hist_counted(field) then add[#add + 1] = {scope .. ':' .. field, by} end
      end
    end
  end
  if #add == 0 then return end
  local hour, day = math.floor(NOW / 3600000), math.floor(NOW / 86400000)
  local minute, hod = I(math.floor(NOW / 60000) % 60), I(hour % 24)
  local mttl = math.ceil(((hour + 1) * 3600000 + HIST_KEEP_MS - NOW) / 1000)
  local httl = math.ceil(((day + 1) * 86400000 + HIST_KEEP_MS - NOW) / 1000)
  for _, a in ipairs(add) do
    bump(P .. 'histm:' .. a[1] .. ':' .. I(hour), minute, a[2], mttl)
    bump(P .. 'histh:' .. a[1] .. ':' .. I(day), hod, a[2], httl)
  end
end
