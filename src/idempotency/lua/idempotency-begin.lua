--[[
Claims one idempotency key for a request, or says why the request may not run.

INVARIANT kept by this script (with idempotency-finish.lua): at any moment at most one request
holds a key (state `pending`, with that request's token, until `until`); a key used with one
body never runs, replays or resumes for another body; and a `done` answer is never replaced.
A holder that vanished (a crashed replica) loses the key once `until` passes: the key goes back
to what it was before the claim (absent, or `ambiguous`). Times come from the Redis server
(TIME), so every replica judges `until` on the same clock.

KEYS[1]  hash: state (pending | ambiguous | done), fp (body fingerprint), token (holder),
         until (ms, Redis time: a pending claim ends), prior ('' or 'ambiguous': the state a
         lapsed or released claim returns to), answer (JSON, state done only)
ARGV[1]  fingerprint   ARGV[2] token   ARGV[3] pendingTtlMs

Returns { 'started' } | { 'resumed' } (claimed after an ambiguous first attempt)
      | { 'in-progress', msLeft (string) } | { 'mismatch' } | { 'done', answer }
]]
local key = KEYS[1]
local fingerprint = ARGV[1]
local token = ARGV[2]
local pendingTtlMs = tonumber(ARGV[3])

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local state = redis.call('HGET', key, 'state')
if state == 'pending' then
  local untilMs = tonumber(redis.call('HGET', key, 'until'))
  if untilMs == nil or untilMs <= now then
    -- The holder never finished: the key returns to what it was before its claim.
    if redis.call('HGET', key, 'prior') == 'ambiguous' then
      redis.call('HSET', key, 'state', 'ambiguous')
      redis.call('HDEL', key, 'token', 'until', 'prior')
      state = 'ambiguous'
    else
      redis.call('DEL', key)
      state = false
    end
  end
end

if not state then
  redis.call('HSET', key, 'state', 'pending', 'fp', fingerprint, 'token', token,
    'until', tostring(now + pendingTtlMs), 'prior', '')
  redis.call('PEXPIRE', key, pendingTtlMs)
  return { 'started' }
end

if redis.call('HGET', key, 'fp') ~= fingerprint then
  return { 'mismatch' }
end

if state == 'done' then
  return { 'done', redis.call('HGET', key, 'answer') }
end

if state == 'ambiguous' then
  redis.call('HSET', key, 'state', 'pending', 'token', token,
    'until', tostring(now + pendingTtlMs), 'prior', 'ambiguous')
  -- The record must outlive the claim, so that a lapsed claim finds `ambiguous` again.
  if redis.call('PTTL', key) < pendingTtlMs then
    redis.call('PEXPIRE', key, pendingTtlMs)
  end
  return { 'resumed' }
end

-- state == 'pending', held by a live request
local untilMs = tonumber(redis.call('HGET', key, 'until'))
return { 'in-progress', tostring(untilMs - now) }
