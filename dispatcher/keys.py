"""Every Redis key name and Lua script, in one place.

All keys of a namespace share the hash tag ``{ns}`` so each script touches one Cluster slot.
Every state change that must happen together runs in one script, and every script is safe to
run twice (a lost reply retried by hand cannot duplicate a result or a requeue).
Scripts take ``now`` from ``TIME`` unless a test passes one explicitly (``ARGV`` "" = server).
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "workers"


@dataclass(frozen=True)
class Keys:
    ns: str

    @property
    def prefix(self) -> str:
        return "{" + self.ns + "}:"

    @property
    def jobs(self) -> str:
        return self.prefix + "jobs"

    @property
    def results(self) -> str:
        return self.prefix + "results"

    @property
    def delayed(self) -> str:
        return self.prefix + "delayed"

    @property
    def tracking(self) -> str:
        return self.prefix + "tracking"

    @property
    def job_prefix(self) -> str:
        return self.prefix + "job:"

    def job(self, job_id: str) -> str:
        return self.job_prefix + job_id

    def invalid_marker(self, entry_id: str) -> str:
        return self.prefix + "invalid:" + entry_id

    @property
    def orphans(self) -> str:
        return self.prefix + "orphans"

    def call(self, call_id: str) -> str:
        return self.prefix + "call:" + call_id

    def call_end(self, call_id: str) -> str:
        return self.prefix + "callend:" + call_id

    def event(self, event_id: str) -> str:
        return self.prefix + "event:" + event_id

    def rate_log(self, provider: str) -> str:
        return self.prefix + "rl:" + provider

    def rate_hint(self, provider: str, window_ms: int) -> str:
        return f"{self.prefix}hint:{provider}:{window_ms}"

    def cooldown(self, provider: str) -> str:
        return self.prefix + "cooldown:" + provider

    def halt(self, provider: str) -> str:
        return self.prefix + "halt:" + provider

    def parked(self, provider: str) -> str:
        return self.prefix + "parked:" + provider

    def slots(self, provider: str) -> str:
        return self.prefix + "slots:" + provider

    def slot_cap(self, provider: str) -> str:
        return self.prefix + "slotcap:" + provider


_NOW = """
local now
if ARGV[1] ~= '' then now = tonumber(ARGV[1]) else
  local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# Claim a job for a stream entry: the first entry to carry an id owns it; later ones are acked.
_BEGIN_FN = """
local function begin(now, h, jobs, entry, group, raw)
  local f = redis.call('HMGET', h, 'owner', 'state', 'attempts', 'first_seen', 'cancelled',
                       'call_id', 'prior_calls', 'dial_ms', 'unsure')
  if f[2] == 'done' then
    redis.call('XACK', jobs, group, entry); return {'done'}
  end
  if not f[1] then
    redis.call('HSET', h, 'owner', entry, 'state', 'queued', 'attempts', 0,
               'first_seen', now, 'raw', raw)
    redis.call('PERSIST', h)
    return {'ok', '0', tostring(now), 'queued', f[5] or '', '', '', '', ''}
  end
  if f[1] ~= entry then
    redis.call('XACK', jobs, group, entry); return {'duplicate', f[2] or ''}
  end
  return {'ok', f[3] or '0', f[4] or tostring(now), f[2] or 'queued', f[5] or '', f[6] or '',
          f[7] or '', f[8] or '', f[9] or ''}
end
"""

# KEYS: job hash, jobs stream | ARGV: now, entry_id, group, raw
BEGIN = _NOW + _BEGIN_FN + """
return begin(now, KEYS[1], KEYS[2], ARGV[2], ARGV[3], ARGV[4])
"""

# KEYS: job hash or invalid marker, jobs stream, results stream, tracking, delayed, slots,
#       call index ('' key allowed) | ARGV: now, entry_id|'', group, job_id, result, ttl, maxlen
FINISH = _NOW + """
local h = KEYS[1]
if redis.call('HGET', h, 'state') == 'done' then
  if ARGV[2] ~= '' then redis.call('XACK', KEYS[2], ARGV[3], ARGV[2]) end
  return 0
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'result', ARGV[5])
redis.call('HSET', h, 'state', 'done', 'finished_ms', now)
redis.call('HDEL', h, 'raw')
redis.call('EXPIRE', h, ARGV[6])
if ARGV[2] ~= '' then redis.call('XACK', KEYS[2], ARGV[3], ARGV[2]) end
redis.call('ZREM', KEYS[4], ARGV[4])
redis.call('ZREM', KEYS[5], ARGV[4])
redis.call('ZREM', KEYS[6], ARGV[4])
return 1
"""

# Ack the stream entry (or leave tracking), free the call slot, and hold the job in a sorted
# set (delayed: due time; parked: order). ``unsure`` = a call may exist: reconcile first.
# KEYS: job hash, jobs stream, target zset, slots, tracking | ARGV: now, entry_id|'', group,
#       job_id, delay_ms, state, attempts, last_status, last_code, unsure, raw job|''
DEFER = _NOW + """
local h = KEYS[1]
if ARGV[2] ~= '' then redis.call('XACK', KEYS[2], ARGV[3], ARGV[2]) end
if redis.call('HGET', h, 'state') == 'done' then return 0 end
if ARGV[11] ~= '' then
  redis.call('HSETNX', h, 'raw', ARGV[11])
  redis.call('HSETNX', h, 'first_seen', now)
  redis.call('PERSIST', h)
end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[4])
redis.call('HSET', h, 'state', ARGV[6], 'attempts', ARGV[7], 'last_status', ARGV[8],
           'last_code', ARGV[9], 'unsure', ARGV[10])
redis.call('ZREM', KEYS[4], ARGV[4])
redis.call('ZREM', KEYS[5], ARGV[4])
return 1
"""

# Move jobs from a sorted set back into the stream; the new entry becomes the owner.
# KEYS: zset, jobs stream | ARGV: now, job key prefix, limit, max score ('now' or '+inf'),
#       orphans set
PROMOTE = _NOW + """
local top = ARGV[4] == 'now' and now or ARGV[4]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', top, 'LIMIT', 0, tonumber(ARGV[3]))
local moved = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local h = ARGV[2] .. id
  local f = redis.call('HMGET', h, 'state', 'raw')
  if f[2] and f[1] ~= 'done' then
    local eid = redis.call('XADD', KEYS[2], '*', 'job', f[2])
    redis.call('HSET', h, 'owner', eid, 'state', 'queued')
    moved = moved + 1
  elseif f[1] ~= 'done' then
    redis.call('HSET', h, 'state', 'orphaned')  -- no payload to send: say so, never drop
    redis.call('SADD', ARGV[5], id)
  end
end
return {moved, #ids}
"""

# One decision before every provider request: cancelled? halted? cooling down? call slot? a
# token from every window at once? If all yes, take them (and mark the job as dialling).
# k: rate log, cooldown, halt, slots, slot cap, job hash ('' when not a dial), jobs stream,
#    then one hint key per window; a: job_id, token, margin_ms, need_slot, cap, lease_ms,
#    attempts ('' when not a dial), entry_id, group, consumer, nwin, then (limit, window_ms)…
_ADMIT_FN = """
local function admit(now, k, a)
  local job_id = a[1]
  if a[8] ~= '' then
    local p = redis.call('XPENDING', k[7], a[9], a[8], a[8], 1, a[10])
    if #p == 0 then return {-3, 0, 'lost'} end
  end
  if k[6] ~= '' and redis.call('HGET', k[6], 'cancelled') == '1' then
    return {-4, 0, 'cancelled'}
  end
  local canary = 0
  if redis.call('EXISTS', k[3]) == 1 then
    local hf = redis.call('HMGET', k[3], 'probe_at', 'canary_until')
    local probe_at = tonumber(hf[1] or '0')
    local cu = tonumber(hf[2] or '0')
    if now < probe_at or now < cu then
      return {-1, math.max(probe_at - now, cu - now, 1000), 'halted'}
    end
    canary = 1
  end
  local cd = tonumber(redis.call('GET', k[2]) or '0')
  if cd > now then return {0, cd - now, 'cooldown'} end
  local need_slot = a[4] == '1'
  if need_slot then
    redis.call('ZREMRANGEBYSCORE', k[4], '-inf', now)
    if not redis.call('ZSCORE', k[4], job_id) then
      local cap = tonumber(a[5])
      local shrunk = tonumber(redis.call('GET', k[5]) or '0')
      if shrunk > 0 and shrunk < cap then cap = shrunk end
      if redis.call('ZCARD', k[4]) >= cap then return {0, 250, 'slot'} end
    end
  end
  local margin = tonumber(a[3])
  local nwin = tonumber(a[11])
  local longest = 0
  for i = 1, nwin do
    local w = tonumber(a[11 + 2 * i])
    if w > longest then longest = w end
  end
  redis.call('ZREMRANGEBYSCORE', k[1], '-inf', now - longest - margin)
  local wait = 0
  for i = 1, nwin do
    local limit = tonumber(a[10 + 2 * i])
    local span = tonumber(a[11 + 2 * i]) + margin
    local lo = '(' .. (now - span)
    local n = redis.call('ZCOUNT', k[1], lo, '+inf')
    if n >= limit then
      local e = redis.call('ZRANGEBYSCORE', k[1], lo, '+inf', 'WITHSCORES', 'LIMIT', n - limit, 1)
      local w = tonumber(e[2]) + span - now
      if w > wait then wait = w end
    end
    local hint = k[7 + i]
    local hv = redis.call('GET', hint)
    if hv and tonumber(hv) <= 0 then
      local ttl = redis.call('PTTL', hint)
      if ttl > wait then wait = ttl end
    end
  end
  if wait > 0 then return {0, wait, 'rate'} end
  redis.call('ZADD', k[1], now, now .. ':' .. a[2])
  redis.call('PEXPIRE', k[1], longest + margin + 1000)
  for i = 1, nwin do
    if redis.call('EXISTS', k[7 + i]) == 1 then redis.call('DECR', k[7 + i]) end
  end
  if need_slot then redis.call('ZADD', k[4], now + tonumber(a[6]), job_id) end
  if canary == 1 then redis.call('HSET', k[3], 'canary_until', now + 60000, 'canary', job_id) end
  if k[6] ~= '' and a[7] ~= '' then
    redis.call('HSET', k[6], 'state', 'dialing', 'attempts', a[7], 'dial_ms', now)
    if redis.call('HEXISTS', k[6], 'first_dial_ms') == 0 then
      redis.call('HSET', k[6], 'first_dial_ms', now)
    end
  end
  return {1, canary, 'ok'}
end
"""

# KEYS: the admit keys | ARGV: now, then the admit arguments
ADMIT = _NOW + _ADMIT_FN + """
return admit(now, KEYS, {unpack(ARGV, 2)})
"""

# The fast path of a new job: claim it and, when it is plainly ready (queued, not cancelled,
# nothing to reconcile, younger than max age), take its first grant in the same call.
# KEYS: the admit keys (the job hash is k[6], the stream k[7]) | ARGV: now, raw, max_age_ms,
#       then the admit arguments with attempts = '' (the script fills it in)
BEGIN_ADMIT = _NOW + _BEGIN_FN + _ADMIT_FN + """
local a = {unpack(ARGV, 4)}
local b = begin(now, KEYS[6], KEYS[7], a[8], a[9], ARGV[2])
if b[1] ~= 'ok' or b[4] ~= 'queued' or b[5] ~= '' or b[9] ~= ''
   or now - tonumber(b[3]) > tonumber(ARGV[3]) then
  return {b, {}}
end
a[7] = tostring(tonumber(b[2]) + 1)
return {b, admit(now, KEYS, a)}
"""

# KEYS: cooldown | ARGV: now, ms — extend, never shorten, the provider-wide pause.
COOLDOWN = _NOW + """
local until_ms = now + tonumber(ARGV[2])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > cur then redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[2]) + 1000) end
return until_ms
"""

# Yield to the provider's own count when it is lower than ours (a key shared elsewhere).
# KEYS: rate log, hint | ARGV: now, limit, window_ms, remaining, reset_ms
OBSERVE = _NOW + """
local n = redis.call('ZCOUNT', KEYS[1], '(' .. (now - tonumber(ARGV[3])), '+inf')
local ours = tonumber(ARGV[2]) - n
local remaining = tonumber(ARGV[4])
if remaining < ours then
  local ttl = tonumber(ARGV[5]); if ttl <= 0 then ttl = tonumber(ARGV[3]) end
  redis.call('SET', KEYS[2], remaining, 'PX', ttl)
  return 1
end
return 0
"""

# KEYS: halt | ARGV: now, reason, code, first_probe_ms, max_probe_ms
HALT = _NOW + """
local backoff = tonumber(redis.call('HGET', KEYS[1], 'backoff_ms') or '0')
if backoff == 0 then
  backoff = tonumber(ARGV[4])
  redis.call('HSET', KEYS[1], 'since', now)
else
  backoff = math.min(backoff * 2, tonumber(ARGV[5]))
end
redis.call('HSET', KEYS[1], 'reason', ARGV[2], 'code', ARGV[3], 'backoff_ms', backoff,
           'probe_at', now + backoff)
redis.call('HDEL', KEYS[1], 'canary_until', 'canary')
return backoff
"""

# KEYS: slots, slot cap | ARGV: now, ttl_ms — the provider refused at the current level.
SHRINK = _NOW + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local inuse = redis.call('ZCARD', KEYS[1])
if inuse < 1 then inuse = 1 end
redis.call('SET', KEYS[2], inuse, 'PX', tonumber(ARGV[2]))
return inuse
"""

# A started call: leave the stream, enter tracking, index the call id.
# KEYS: job hash, jobs stream, tracking, call index | ARGV: now, entry_id|'', group, job_id,
#       call_id, first_visit_ms, ttl_s
TRACK = _NOW + """
local h = KEYS[1]
if redis.call('HGET', h, 'state') == 'done' then
  if ARGV[2] ~= '' then redis.call('XACK', KEYS[2], ARGV[3], ARGV[2]) end
  return 0
end
redis.call('HSET', h, 'state', 'tracking', 'call_id', ARGV[5], 'track_ms', now)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[6]), ARGV[4])
redis.call('SET', KEYS[4], ARGV[4], 'EX', ARGV[7])
if ARGV[2] ~= '' then redis.call('XACK', KEYS[2], ARGV[3], ARGV[2]) end
return 1
"""

# Lease due tracking entries to this worker by pushing their score ahead.
# KEYS: tracking | ARGV: now, lease_ms, limit
CLAIM_DUE = _NOW + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id) end
return ids
"""

# Record a webhook's call end once per event and wake the job's tracker.
# KEYS: event marker, call end hash, call index, tracking | ARGV: now, ttl_s, field, value, …
WEBHOOK = _NOW + """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then return -1 end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[2], ARGV[2])
local job = redis.call('GET', KEYS[3])
if job then redis.call('ZADD', KEYS[4], 'XX', 0, job); return 1 end
return 0
"""

# Keep in-flight entries ours; report the ones another consumer took.
# KEYS: jobs stream | ARGV: now, group, consumer, entry ids…
HEARTBEAT = _NOW + """
local lost = {}
for i = 4, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[2], ARGV[i], ARGV[i], 1, ARGV[3])
  if #p == 0 then table.insert(lost, ARGV[i])
  else redis.call('XCLAIM', KEYS[1], ARGV[2], ARGV[3], 0, ARGV[i], 'JUSTID') end
end
return lost
"""

# KEYS: job hash, delayed | ARGV: now, job_id, ttl_s
CANCEL = _NOW + """
local st = redis.call('HGET', KEYS[1], 'state')
if st == 'done' then return 0 end
redis.call('HSET', KEYS[1], 'cancelled', '1')
if not st then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
if st == 'delayed' then redis.call('ZADD', KEYS[2], 0, ARGV[2]) end
return 1
"""
