--[[
Ends the claim a request holds on an idempotency key (see idempotency-begin.lua).

INVARIANT kept by this script: only the current holder (same token, state `pending`) changes
the record; a request whose claim lapsed and was taken over changes nothing. `done` stores the
final answer, `ambiguous` records that the vendor may or may not have acted (a 504), and
`release` gives the key back as it was before the claim (absent, or `ambiguous` again), so the
next request with the key calls the vendor.

KEYS[1]  hash (see idempotency-begin.lua)
ARGV[1]  token   ARGV[2] action: done | ambiguous | release   ARGV[3] answer (JSON, done only)
ARGV[4]  ttlMs: lifetime of a done or ambiguous record

Returns 1 when the record changed, 0 when the caller no longer held the key.
]]
local key = KEYS[1]
local token = ARGV[1]
local action = ARGV[2]

if redis.call('HGET', key, 'state') ~= 'pending' or redis.call('HGET', key, 'token') ~= token then
  return 0
end

if action == 'release' then
  if redis.call('HGET', key, 'prior') == 'ambiguous' then
    redis.call('HSET', key, 'state', 'ambiguous')
    redis.call('HDEL', key, 'token', 'until', 'prior')
  else
    redis.call('DEL', key)
  end
  return 1
end

if action == 'done' then
  redis.call('HSET', key, 'state', 'done', 'answer', ARGV[3])
elseif action == 'ambiguous' then
  redis.call('HSET', key, 'state', 'ambiguous')
else
  return redis.error_reply('unknown action ' .. tostring(action))
end
redis.call('HDEL', key, 'token', 'until', 'prior')
redis.call('PEXPIRE', key, tonumber(ARGV[4]))
return 1
