--! include core rate
-- REGRANT: a granted dial is about to be sent late (a slow pre-dial hook, a stalled
-- process): its grant's place in the provider's log is given back and a fresh one taken, so
-- the request still reaches the provider within the send margin of its grant. Only while the
-- grant still owns the job.
-- A = {id, dtok, tok (the new log entry), prov, wins, margin, keep (the old entry was
-- spent on another request, a look-up: it stays)}.
-- Returns {ok, wait (ms), why}: why = 'lost' when another worker owns the job now, else
-- ok | rate | cooldown | halted.
-- Safe to run twice: the second run finds its own token already in the log.
local f = hget(jkey(A.id), {'state', 'dtok', 'rtok'})
if f.state ~= 'dialing' or f.dtok ~= A.dtok then
  return reply({ok = false, wait = 0, why = 'lost'})
end
if f.rtok == A.tok then return reply({ok = true, wait = 0, why = 'ok'}) end
local mode, hw = halt_mode(A.prov)
if mode == 'halted' then return reply({ok = false, wait = hw, why = 'halted'}) end
local cw = cooldown_wait(A.prov)
if cw > 0 then return reply({ok = false, wait = cw, why = 'cooldown'}) end
local log = P .. 'rl:' .. A.prov
use_margin(A)
local give_back = f.rtok and not A.keep
if give_back then redis.call('ZREM', log, f.rtok) end
local room, wait = rate_room(A)
if room <= 0 then
  if give_back then redis.call('ZADD', log, NOW, f.rtok) end  -- keep a place: nothing is lost
  return reply({ok = false, wait = wait, why = 'rate'})
end
rate_take(A, {A.tok})
redis.call('HSET', jkey(A.id), 'rtok', A.tok, 'gt', NOW)  -- owned as of now: a takeover waits
return reply({ok = true, wait = 0, why = 'ok'})
