--! include core
-- UNCONSENT: the consent ledger's part of `forget --number`. The number's consents (their
-- sources may name the person) are erased; its revocations are kept as the caller's proof,
-- under the number's SHA-256 only (`consent:<sha256>`), so the ledger no longer holds the
-- number in the clear. A = {plain = E.164 key, hashed = SHA-256 key}.
-- Returns {kept = revocations now under the hashed key, erased = consents removed}.
-- Safe to run twice: the second run finds only the kept revocations and keeps them.

local function events(k)
  local out = {}
  for _, raw in ipairs(redis.call('LRANGE', k, 0, -1)) do out[#out + 1] = cjson.decode(raw) end
  return out
end

local plain, hashed = P .. 'consent:' .. A.plain, P .. 'consent:' .. A.hashed
local kept, seen, erased = {}, {}, 0
for _, k in ipairs({hashed, plain}) do
  for _, e in ipairs(events(k)) do
    if e.k == 'r' then
      if not seen[e.id] then
        seen[e.id] = true
        kept[#kept + 1] = cjson.encode(e)
      end
    else
      erased = erased + 1
    end
  end
end
redis.call('DEL', plain, hashed)
if #kept > 0 then redis.call('RPUSH', hashed, unpack(kept)) end
return reply({kept = #kept, erased = erased})
