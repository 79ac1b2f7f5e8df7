-- Dormant jobs: a job that arrives long before it is due (not_before tomorrow, a calling
-- window that opens tonight) sleeps as one packed field of the `dormant` hash, next to its
-- entry in `delayed`, instead of a hash and a timeline of its own: about a sixth of the
-- memory. Everything that looks a job up by id (jget) wakes it first, so the rest of the
-- scripts never see the packed form; PEEK reads it without waking it.
-- A sleeping job's hash fields are SLEEP in this order (a JSON array, false for a field it
-- does not have), plus SLEEP_CONST; its timeline is the two events it got on arrival, rebuilt
-- from those fields.

local DORMANT = P .. 'dormant'
local ASLEEP  -- whether any job sleeps: nil until looked up (once per script)
local SLEEP = {'owner', 'raw', 'prov', 'prio', 'camp', 'to', 'dk', 'exp', 'first_seen',
               'ready_since', 'wr', 'wu', 'wd', 'pause_base', 'subj', 'sc', 'rg'}
-- (new fields go at the end: a job packed before they existed unpacks without them)
local SLEEP_CONST = {attempts = '0', rd = '0', cn = '0', state = 'delayed'}
local SLEEP_AFTER_MS = 60000  -- due sooner than this: not worth packing (timing.py)

-- The fields and timeline of a packed job, as its hash and timeline held them.
local function unpack_sleep(packed)
  local v = cjson.decode(packed)
  local f = {}
  for i, n in ipairs(SLEEP) do
    if v[i] ~= false then f[n] = v[i] end
  end
  for n, c in pairs(SLEEP_CONST) do f[n] = c end
  local t = tonumber(f.first_seen)
  local waiting = {e = 'waiting', t = t, u = tonumber(f.wu), d = f.wd, r = f.wr}
  return f, {cjson.encode({e = 'claimed', t = t, entry = f.owner}), cjson.encode(waiting)}
end

-- Two flat tables hold the same keys and values.
local function same(a, b)
  for k, x in pairs(a) do if b[k] ~= x then return false end end
  for k, _ in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- Put a just-placed delayed job to sleep, when its hash and timeline are exactly what
-- arrival made them (anything more, a redriven job's call numbers, a cancel: it stays awake).
local function sleep_job(id)
  local h = jkey(id)
  local all = redis.call('HGETALL', h)
  local f = {}
  for i = 1, #all, 2 do f[all[i]] = all[i + 1] end
  local v, known = {}, 0
  for i, n in ipairs(SLEEP) do
    if f[n] then known = known + 1 end
    v[i] = f[n] or false
  end
  for n, c in pairs(SLEEP_CONST) do
    if f[n] ~= c then return false end
    known = known + 1
  end
  if known * 2 ~= #all then return false end
  local packed = cjson.encode(v)
  local _, events = unpack_sleep(packed)
  local had = redis.call('LRANGE', P .. 'tl:' .. id, 0, -1)
  if #had ~= #events then return false end
  for i, e in ipairs(events) do
    if not same(cjson.decode(e), cjson.decode(had[i])) then return false end
  end
  redis.call('HSET', DORMANT, id, packed)
  ASLEEP = true
  redis.call('DEL', h, P .. 'tl:' .. id)
  return true
end

-- Give a sleeping job back its hash and timeline (false: it was not asleep).
local function wake(id)
  if ASLEEP == nil then ASLEEP = redis.call('EXISTS', DORMANT) == 1 end
  if not ASLEEP then return false end
  local packed = redis.call('HGET', DORMANT, id)
  if not packed then return false end
  local f, events = unpack_sleep(packed)
  local args = {}
  for n, x in pairs(f) do
    args[#args + 1] = n
    args[#args + 1] = x
  end
  redis.call('HSET', jkey(id), unpack(args))
  redis.call('RPUSH', P .. 'tl:' .. id, unpack(events))
  redis.call('HDEL', DORMANT, id)
  return true
end

-- A job's named fields, waking it if it sleeps.
local function jget(id, names)
  local f = hget(jkey(id), names)
  if next(f) == nil and wake(id) then f = hget(jkey(id), names) end
  return f
end
