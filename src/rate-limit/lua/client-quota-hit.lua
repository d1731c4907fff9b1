--[[
Counts one request of one client against its quota: a sliding log over the last windowMs.

INVARIANT kept by this script: for every t, at most `limit` admitted requests of the client lie
in (t - windowMs, t]. Refused requests are not recorded, so a client that keeps knocking while
over quota is admitted again as soon as its oldest admitted request leaves the window. Times come
from the Redis server (TIME), so every replica counts on the same clock.

KEYS[1]  sorted set, member = request id, score = admission time (ms, Redis time, fractional)
ARGV[1]  limit   ARGV[2] windowMs   ARGV[3] request id (unique per request)

Returns { admitted (1 or 0), hits in the window (this one included when admitted),
          msUntilASlotFrees (string) }
]]
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local windowMs = tonumber(ARGV[2])
local id = ARGV[3]

-- %.17g keeps every digit of a double (tostring keeps 14, a tenth of a millisecond here).
local function exact(number)
  return string.format('%.17g', number)
end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000

redis.call('ZREMRANGEBYSCORE', key, '-inf', exact(now - windowMs))
local count = redis.call('ZCARD', key)

if count >= limit then
  -- The admission `limit` places back must leave the window before another one fits.
  local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
  return { 0, count, exact(tonumber(oldest[2]) + windowMs - now) }
end

redis.call('ZADD', key, exact(now), id)
redis.call('PEXPIRE', key, windowMs + 1000)
local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return { 1, count + 1, exact(tonumber(first[2]) + windowMs - now) }
