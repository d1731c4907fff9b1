-- A room goes back to pending for a later attempt (no slot in time, a failure that may pass, a
-- replica shutting down). Invariant: `maybeActed`, once set, stays until the room ends, so a later
-- "room exists" is read as this batch's own creation; `failures` only grows.
-- KEYS: 1 the batch's rooms hash
-- ARGV: 1 the room's index, 2 '1' when this attempt may have reached the vendor,
--       3 '1' when it ended in a failure that counts
-- Returns the room's failures so far (0 for a room no longer pending).
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  return 0
end
local room = cjson.decode(raw)
if room.status ~= 'pending' then
  return 0
end
room.sending = nil
if ARGV[2] == '1' then
  room.maybeActed = 1
end
if ARGV[3] == '1' then
  room.failures = (room.failures or 0) + 1
end
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(room))
return room.failures or 0
