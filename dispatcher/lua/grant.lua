--! include core place rate callerid budget reserve grant history
-- GRANT: give a provider's free budget to the best ready jobs (see lib/grant.lua), marking
-- each as dialling by this consumer. A = {rid, grants = [G, ...]}.
-- Returns {grants = [{prov, jobs = [...], fin = [ids], wait (ms), why}]} where why is
-- ok | empty | rate | cooldown | slot | halted. Safe to run twice (same rid: same reply).
local seen = cached_reply()
if seen then return seen end
DELTA = {}
local out = {}
for _, G in ipairs(A.grants) do table.insert(out, grant(G)) end
history()
flush()
return remember(reply({grants = arr(out)}))
