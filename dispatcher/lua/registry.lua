--! include core
-- REGISTRY: record the as-of date of a do-not-call registry just imported (a national list,
-- its numbers already added to `dnc`). registries: name -> as-of (epoch ms); the grant holds
-- the jobs a registry covers while its copy is missing or too old (lib/grant.lua).
-- A = {reg (the registry's name), as_of (ms), count (numbers in the file)}.
-- Returns {as_of, previous}: the date now recorded and the one before (false: none).
-- An older date never replaces a newer one (an old file imported again does not make the copy
-- look older than it is). Safe to run twice: the second run records the same date.

local k = P .. 'registries'
local prev = tonumber(redis.call('HGET', k, A.reg) or '')
local asof = A.as_of
if prev and prev > asof then asof = prev end
redis.call('HSET', k, A.reg, I(asof), A.reg .. ':count', I(A.count or 0),
           A.reg .. ':loaded', I(NOW))
return reply({as_of = asof, previous = prev or false})
