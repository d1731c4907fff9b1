-- A replica takes up one room. Invariant: only a pending room is sent; the mark `sending` stays
-- until the attempt ends or is released, so an attempt whose replica died is known to the next one
-- as one that may have reached the vendor.
-- KEYS: 1 the batch's meta hash, 2 its rooms hash
-- ARGV: 1 the room's index
-- Returns {'send', 0|1 (an earlier attempt may have acted)} or {'skip'}.
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then
  return {'skip'}
end
local room = cjson.decode(raw)
if room.status ~= 'pending' then
  return {'skip'}
end
local mayHaveActed = (room.sending == 1 or room.maybeActed == 1) and 1 or 0
room.sending = 1
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(room))
if redis.call('HGET', KEYS[1], 'status') == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'running')
end
return {'send', mayHaveActed}
