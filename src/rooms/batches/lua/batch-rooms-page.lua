-- Reads one page of a batch's rooms in index order, from a cursor, optionally only those of one
-- status, without sending the whole batch over the wire. Invariant: a page never repeats a room
-- of an earlier page and never skips one: the next cursor is the index after the last room read.
-- KEYS: 1 the batch's meta hash, 2 its rooms hash
-- ARGV: 1 cursor (index), 2 limit, 3 status ('' for all)
-- Returns {nextCursor (-1 on the last page), room JSON...}.
local cursor = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0')
local wanted = ARGV[3]
local out = {-1}
local index = cursor
while index < total and #out - 1 < limit do
  local raw = redis.call('HGET', KEYS[2], tostring(index))
  index = index + 1
  if raw and (wanted == '' or cjson.decode(raw).status == wanted) then
    out[#out + 1] = raw
  end
end
if index < total then
  out[1] = index
end
return out
