-- The first-come-first-served limiter's src/rate-limit/lua/reserve-outbound-slot.lua as of a8dab26 (no longer in src),
-- kept as the baseline of npm run bench:fairness and npm run bench (see bench/fcfs-gateway.ts).
--[[
Reserves the next free outbound slot for one vendor AppId, for the whole fleet, in one round trip.

INVARIANT kept by this script: for every t, the log holds at most `limit` slots in
[t, t + windowMs + marginMs), and any two slots are at least (windowMs + marginMs) / limit apart.
Every call the gateways send to the vendor starts at one of these slots, so no window of
`windowMs` at the vendor's door sees more than `limit` calls, even when a call reaches the door up
to `marginMs` later than its neighbours. Times come from the Redis server (TIME), never from the
pods, so clock skew between replicas cannot break the cap.

Slots are handed out in increasing order, so the log is sorted by score in the order of arrival
and the newest slot is the last member. Removing a slot (a caller that gave up) only makes the
log sparser, which keeps the invariant.

HAND-OVER: slots before the time KEYS[2] holds are placed with `handoverLimit` instead of
`limit`. A replica coming back from its in-process share (Redis was unreachable) sets it: the
other replicas may still be sending their own shares, which the log does not hold until they come
back too, so the log leaves room for them: handoverLimit = limit - (replicas - 1) * share. Slots
after that time follow `limit` again (still counting every slot in their span), so a queue reserved
during the hand-over does not keep the fleet slow beyond it.

KEYS[1]  sorted set, member = reservation id, score = slot start (ms, Redis time, fractional)
KEYS[2]  hand-over marker: the Redis time (ms) the hand-over lasts until, expiring then
ARGV[1]  limit              ARGV[2] windowMs        ARGV[3] marginMs
ARGV[4]  maxWaitMs: a slot further away than this is refused and nothing is written
ARGV[5]  leadMs: the slot is at least this far from now (a caller that woke too late for its
         slot leaves room for the answer to reach it this time)
ARGV[6]  reservation id (unique per acquisition)
ARGV[7]  id of a slot the caller gives back first, or '': a caller whose timer fired too late to
         use its slot trades it for a new one, and an unused slot may always leave the log
ARGV[8]  handoverLimit: the limit for slots before the hand-over ends
ARGV[9]  handoverMs: when > 0, this caller is back from its in-process share and (re)starts the
         hand-over for this long
ARGV[10..] carried-over releases: offsets from now (ms; negative = past) of calls a replica sent
          or scheduled while Redis was unreachable, written first so that they count

Returns { granted (1 or 0), waitMs, lastSlotOffsetMs, nowMs } with numbers as strings (Lua numbers
would be truncated to integers): waitMs is how far the (offered) slot is from now,
lastSlotOffsetMs how far the newest slot in the log is from now after this call, nowMs the Redis
time the script ran at (callers map it onto their own clock).
]]
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local windowMs = tonumber(ARGV[2])
local marginMs = tonumber(ARGV[3])
local maxWaitMs = tonumber(ARGV[4])
local leadMs = tonumber(ARGV[5])
local id = ARGV[6]
local handoverLimit = tonumber(ARGV[8])
local handoverMs = tonumber(ARGV[9])

-- %.17g keeps every digit of a double (tostring keeps 14, a tenth of a millisecond here).
local function exact(number)
  return string.format('%.17g', number)
end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local span = windowMs + marginMs

-- Slots older than one span can no longer share a window with a new slot.
redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. exact(now - span))

if ARGV[7] ~= '' then
  redis.call('ZREM', key, ARGV[7])
end

for i = 10, #ARGV do
  redis.call('ZADD', key, exact(now + tonumber(ARGV[i])), id .. ':carried:' .. (i - 9))
end

if handoverMs > 0 then
  redis.call('SET', KEYS[2], exact(now + handoverMs), 'PX', math.ceil(handoverMs))
end

-- The earliest slot that keeps the invariant for `lim` calls per span.
local function nextSlot(lim)
  local slot = now + leadMs
  local count = redis.call('ZCARD', key)
  if count > 0 then
    local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    slot = math.max(slot, tonumber(last[2]) + span / lim)
  end
  if count >= lim then
    -- The slot `lim` places back must have left the span before the new one enters it.
    local anchor = redis.call('ZRANGE', key, -lim, -lim, 'WITHSCORES')
    slot = math.max(slot, tonumber(anchor[2]) + span)
  end
  return slot
end

local slot = nextSlot(limit)
local handoverUntil = tonumber(redis.call('GET', KEYS[2]) or '0')
if slot < handoverUntil then
  local reduced = nextSlot(math.min(limit, handoverLimit))
  if reduced < handoverUntil then
    slot = reduced
  else
    slot = handoverUntil
  end
end

local waitMs = slot - now
if waitMs > maxWaitMs then
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  local lastOffset = 0
  if newest[2] then
    lastOffset = tonumber(newest[2]) - now
    -- Carried releases may have just created the key: it must expire like any other.
    redis.call('PEXPIRE', key, math.ceil(math.max(lastOffset, 0) + span) + 1000)
  end
  return { 0, exact(waitMs), exact(lastOffset), exact(now) }
end

redis.call('ZADD', key, exact(slot), id)
-- The key lives as long as its newest slot can matter, so an idle fleet leaves nothing behind.
redis.call('PEXPIRE', key, math.ceil(waitMs + span) + 1000)
return { 1, exact(waitMs), exact(waitMs), exact(now) }
