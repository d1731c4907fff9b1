-- Cancels a batch: every room pending and not on its way ends `cancelled`; rooms on their way end
-- as their calls do. Invariant: as for a finished room, each cancelled room leaves the client's
-- rooms not yet sent once, and the batch ends (finishedAt, TTL) when none is left pending.
-- KEYS: 1 the batch's meta hash, 2 its rooms hash, 3 the client's pending counter
-- ARGV: 1 now (ms), 2 TTL (s)
-- Returns -1 for no such batch, else 1 when the batch has ended, 0 when rooms are still on their way.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'done' or status == 'cancelled' then
  return redis.call('HEXISTS', KEYS[1], 'finishedAt')
end
local entries = redis.call('HGETALL', KEYS[2])
local cancelled = 0
for i = 1, #entries, 2 do
  local room = cjson.decode(entries[i + 1])
  if room.status == 'pending' and room.sending ~= 1 then
    redis.call('HSET', KEYS[2], entries[i], cjson.encode({roomId = room.roomId, status = 'cancelled'}))
    cancelled = cancelled + 1
  end
end
redis.call('HSET', KEYS[1], 'status', 'cancelled')
redis.call('HINCRBY', KEYS[1], 'cancelled', cancelled)
-- 0 - cancelled, not -cancelled: Lua's -0 reaches Redis as "-0", which HINCRBY refuses.
local pending = redis.call('HINCRBY', KEYS[1], 'pending', 0 - cancelled)
if cancelled > 0 then
  local left = redis.call('DECRBY', KEYS[3], cancelled)
  if left <= 0 then redis.call('DEL', KEYS[3]) end
end
if pending > 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'finishedAt', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
