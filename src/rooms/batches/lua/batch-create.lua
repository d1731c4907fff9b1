-- Stores a new batch with every room pending, and counts its rooms against the client's rooms not
-- yet sent. Invariant: a client's counter never passes ARGV[3] through this script, and it equals
-- the number of its rooms still pending over all its batches (finish, cancel and discard take
-- them off again in the same step as they change a room).
-- KEYS: 1 the batch's meta hash, 2 its rooms hash (index -> room JSON), 3 the client's pending counter
-- ARGV: 1 batchId, 2 createdAt (ms), 3 max pending rooms, 4 lifetime (s) until the batch ends,
--       5 callbackUrl ('' for none), 6 requestId, 7.. the rooms' JSON, index 0 first
local total = #ARGV - 6
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'exists'}
end
local pending = tonumber(redis.call('GET', KEYS[3]) or '0')
if pending + total > tonumber(ARGV[3]) then
  return {'over', pending}
end
redis.call('INCRBY', KEYS[3], total)
redis.call('HSET', KEYS[1], 'batchId', ARGV[1], 'status', 'queued', 'total', total, 'created', 0,
  'failed', 0, 'cancelled', 0, 'pending', total, 'createdAt', ARGV[2], 'requestId', ARGV[6])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'callbackUrl', ARGV[5])
end
-- HSET in chunks: unpack() of thousands of values overflows Lua's stack.
local chunk = {}
for i = 7, #ARGV do
  chunk[#chunk + 1] = tostring(i - 7)
  chunk[#chunk + 1] = ARGV[i]
  if #chunk >= 400 then
    redis.call('HSET', KEYS[2], unpack(chunk))
    chunk = {}
  end
end
if #chunk > 0 then
  redis.call('HSET', KEYS[2], unpack(chunk))
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {'created'}
