-- Removes a batch nothing of which was sent (its rooms could not be queued), and gives its rooms
-- back to the client's rooms not yet sent. Invariant: the counter drops by exactly the rooms the
-- batch still had pending, once: a second discard finds nothing.
-- KEYS: 1 the batch's meta hash, 2 its rooms hash, 3 the client's pending counter
local pending = tonumber(redis.call('HGET', KEYS[1], 'pending') or '0')
if redis.call('EXISTS', KEYS[1]) == 1 and pending > 0 then
  local left = redis.call('DECRBY', KEYS[3], pending)
  if left <= 0 then redis.call('DEL', KEYS[3]) end
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
