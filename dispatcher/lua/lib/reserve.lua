-- The reserve: a share of every window (G.reserve, reserve_high) only high-priority jobs
-- may take. Normal and low jobs are granted only while the log holds less than
-- (1 - reserve) of each limit; pick() and grant() in lib/grant.lua ask here.
local function reserve_start(G, polls)
  if not G.reserve or G.reserve <= 0 then return end
  local room, wait = rate_room(G, 1 - G.reserve)
  G.low_room, G.low_wait = room - polls, wait
end

local function reserve_room(G, prio)
  if prio == 'high' or not G.low_room then return 1e9 end
  return G.low_room
end

local function reserve_took(G, job)
  if G.low_room and job.prio ~= 'high' then G.low_room = G.low_room - 1 end
end

-- Nothing picked while normal jobs wait behind the reserve: wait for the share to free.
local function reserve_blocked(G, out)
  if G.low_room and G.low_room <= 0 and out.why == 'empty' then
    out.why, out.wait = 'rate', math.max(G.low_wait, 50)
  end
end
