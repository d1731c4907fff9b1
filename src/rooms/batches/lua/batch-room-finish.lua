-- Records how one room ended. Invariant: a room ends once (a repeat changes nothing), and its end,
-- the batch's counts, the client's rooms not yet sent and the batch's status move together. When
-- no room is left pending the batch ends: `done` (or stays `cancelled`), with finishedAt, and its
-- keys expire BATCH_TTL_S later.
-- KEYS: 1 the batch's meta hash, 2 its rooms hash, 3 the client's pending counter
-- ARGV: 1 the room's index, 2 the outcome's JSON (status, and its fields), 3 now (ms), 4 TTL (s)
-- Returns {recorded 0|1, batchEnded 0|1}.
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then
  return {0, 0}
end
local room = cjson.decode(raw)
if room.status ~= 'pending' then
  return {0, redis.call('HEXISTS', KEYS[1], 'finishedAt')}
end
local outcome = cjson.decode(ARGV[2])
local ended = {roomId = room.roomId, status = outcome.status}
for _, field in ipairs({'attributeSeq', 'zegoRequestId', 'recovered', 'error'}) do
  ended[field] = outcome[field]
end
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(ended))
redis.call('HINCRBY', KEYS[1], outcome.status, 1)
local pending = redis.call('HINCRBY', KEYS[1], 'pending', -1)
local left = redis.call('DECR', KEYS[3])
if left <= 0 then redis.call('DEL', KEYS[3]) end
if pending > 0 then
  return {1, 0}
end
if redis.call('HGET', KEYS[1], 'status') ~= 'cancelled' then
  redis.call('HSET', KEYS[1], 'status', 'done')
end
redis.call('HSET', KEYS[1], 'finishedAt', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {1, 1}
