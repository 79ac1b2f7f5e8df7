--! include core
-- VERIFY: before sending a dial that was delayed in this process (the event loop stalled, the
-- process was stopped), check that the grant still owns the job: a worker presumed dead may
-- have had its job handed to a reconciliation. A = {id, dtok}. Returns 1 when still owned.
local f = hget(jkey(A.id), {'state', 'dtok'})
return reply((f.state == 'dialing' and f.dtok == A.dtok) and 1 or 0)
