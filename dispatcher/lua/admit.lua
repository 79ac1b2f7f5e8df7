--! include core rate
-- ADMIT: one grant for a request that is not a dial (a poll, a lookup page).
-- A = {prov, wins, margin, tok, during_halt}. Returns {ok, wait (ms), why}.
-- Not idempotent by design: a lost reply costs one grant, never a request over the limit.
local ok, wait, why = admit_request(A, A.tok)
return reply({ok = ok, wait = wait, why = why})
