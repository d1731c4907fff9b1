--[[
The fleet-wide scheduler of one vendor budget (one AppId): every replica's callers queue here, and
free slots go to them fairly, by priority, never more than the budget allows. One script, one round
trip per call; a replica calls it to enqueue a ticket (and maybe get a slot at once), to collect
the grants of its waiting tickets, to cancel tickets, and to renew its membership lease.

INVARIANT kept by this script: for every t, the slot log holds at most
  limit - (the shares of the members whose lease has lapsed, within the lapse memory)
slots in [t, t + windowMs + marginMs), and any two slots are granted at least (windowMs +
marginMs) / that limit apart. Every call the gateways send through Redis starts at one of these
slots; one that reached the wire later than its slot allowed is moved to where it left (`late`),
which the count above survives (the slot a span after it is not granted yet). And a member
whose lease has lapsed may be sending its own share without Redis: together they stay within
`limit` in every window at the vendor's door. Slots are granted at most a horizon ahead of now:
each member asks for its own (it grows with that member's round trip to Redis), and a member's
horizon grows only one lease after it asked (it shrinks at once), so every reply's `reach` (the
longest horizon any member may use until the caller's lease ends) tells a replica that loses Redis
when the fleet's calls granted until then are over. A slot is never granted less than `leadMs`
ahead of now: the answer must reach its replica before the slot does.
Times come from the Redis server (TIME), never from the pods (the gateway never sends `clockMs`).

FAIRNESS: weighted fair queuing within each level. Each client waits in its own line, in order
of arrival (retried late slots first); only the first ticket of a line carries virtual tags, so a
caller that gives up costs its client nothing. That ticket of client c with weight w starts at
S = max(V, F_c), F_c being the finish tag of c's last ticket granted (idle time earns no credit),
and finishes at S + 1 / w (a retried late slot: S = F = V, charged nothing); V is the start tag
of the last ticket granted. The line whose first ticket finishes first is served next, ties to
the earlier ticket. Level `i` (interactive) is served before level `b` (batch), except that while
both wait, every slot adds minShare to a credit and a credit of 1 buys batch that slot: batch
gets at least minShare of the slots while it has work waiting, and everything interactive leaves.
A ticket whose caller gives up before the slot at hand has left before the level is chosen: it
neither counts as waiting nor moves the credit. FairQueue (fair-queue.ts) keeps the same rules in
one process; fair-queue.differential.redis-spec.ts replays traces on both and compares.

KEYS (one hash tag): [1] slots zset (member = ticket, score = slot, ms)
  [2] interactive queue zset: the first ticket of each client's line (score = its finish tag)
  [3] batch queue zset, the same
  [4] tickets hash: ticket -> "owner|client|level|weight|rank|start|finish" (rank 0: a retried
      late slot, 1 otherwise; the tags once it is first in its line)
  [5] fair hash: v:<level> (virtual time), f:<level>:<client> (finish tag of its last ticket
      granted), h:<level>:<client> (the first ticket of its line, while it has one), credit, seq
  [6] granted hash: ticket -> slot (ms), until its owner collects it
  [7] deadlines zset: ticket -> when it leaves (a waiting ticket: its caller's deadline; a grant
      its owner did not collect: one span after its slot)
  [8] members zset: replica -> lease expiry (ms)   [9] shares hash: replica -> calls per window it
      may send on its own while cut off
  [10] lines zset (every score 0, read by lex): "<level>|<client>|<rank>|<ticket>" per waiting ticket
  [11] reaches hash: replica -> "horizon|raise|raiseAt" (its horizon now, and a longer one asked for
      that applies from raiseAt on; the last two empty when none is pending)

ARGV[1] JSON: { replica, rules = { limit, windowMs, marginMs, horizonMs, baseHorizonMs, leadMs, leaseMs,
  memoryMs, minShare, tolerance }, built by scheduleScriptRules (redis-outbound-rate-limiter.ts), where
  every number the script shares with the TypeScript side is defined (horizonMs and leadMs: what this
  replica's round trip asks for; baseHorizonMs: the horizon any member may use at once, the shortest
  one; minShare: batch's credit per slot; tolerance:
  how far below a whole number a sum of fractions still counts as whole, for the credit and when
  counting the slots before a ticket),
  ticket = { id, client, weight, level, maxWaitMs, front, replacing } (optional: a caller asking
  for a slot; `front` puts it before every waiting ticket of its level, for a caller whose granted
  slot came too late; `replacing` is its old slot, given back first),
  waiting = [ticket...] (this replica's tickets still waiting: their grants are collected),
  cancel = [ticket...] (callers that stopped waiting: tickets leave, granted slots are given back),
  late = [[ticket, ms]...] (granted slots whose call reached the wire this much past the wire
  tolerance, the whole margin: each slot moves that much later, never earlier),
  carried = [[id, offset ms]...] (calls this replica sent on its own without Redis, offsets from now),
  fleet = [[replica, share]...] (the members this replica last saw, re-asserted as lapsed when
  absent: after Redis lost its data, or after a long outage, the fleet still leaves room for them),
  leaving = true (graceful shutdown: the lease ends now, without a lapse),
  clockMs (tests only: the time to run at instead of TIME; see below) }

Returns JSON: { now (string, exact ms), ticket = { id, state = granted|queued|refused, slot (offset
  from now, granted), estimate (offset, queued or refused) }, grants = [[ticket, slot offset]...],
  dispatchIn (ms from now until a slot enters the horizon, -1 when nothing waits), lastSlot
  (offset of the newest slot, or null), lease (ms), share (this replica's own share when cut off),
  members, lapsed (how many), fleet = [[replica, share, lease expiry offset]...], horizon (what this
  call granted up to, ms), reach (the longest horizon a member may grant with until this lease ends) }
Empty lists may come back as {} (cjson cannot tell an empty array from an empty object).
]]
local K_SLOTS, K_QUEUE_I, K_QUEUE_B, K_TICKETS, K_FAIR, K_GRANTED, K_DEADLINES, K_MEMBERS, K_SHARES, K_LINES, K_REACHES =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]

local request = cjson.decode(ARGV[1])
local rules = request.rules
local limit = rules.limit
local span = rules.windowMs + rules.marginMs
local me = request.replica
-- The differential spec's traces send neither: grants from now on, one horizon for everyone.
local lead = rules.leadMs or 0
local baseHorizon = rules.baseHorizonMs or rules.horizonMs

-- %.17g keeps every digit of a double (tostring keeps 14, a tenth of a millisecond here).
local function exact(number)
  return string.format('%.17g', number)
end

-- `clockMs` exists for the differential spec alone, which replays one trace on this script and on
-- FairQueue at the same logical times. The gateway never sends it, so its slots always stand on
-- the Redis server's clock.
local now = request.clockMs
if not now then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
end

-- ------------------------------------------------------------------ membership

local function shareOf(size)
  -- Calls per window one member may send on its own: the fleet's budget split evenly, at least one
  -- (with more members than calls, each sends one per a longer window: still one in any window).
  return math.max(1, math.floor(limit / math.max(1, size)))
end

if request.fleet then
  for _, entry in ipairs(request.fleet) do
    local id, share = entry[1], entry[2]
    if id ~= me and not redis.call('ZSCORE', K_MEMBERS, id) then
      redis.call('ZADD', K_MEMBERS, exact(now), id)
      redis.call('HSET', K_SHARES, id, share)
    end
  end
end
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', K_MEMBERS, '-inf', '(' .. exact(now - rules.memoryMs))) do
  redis.call('ZREM', K_MEMBERS, gone)
  redis.call('HDEL', K_SHARES, gone)
  redis.call('HDEL', K_REACHES, gone)
end
if request.leaving then
  redis.call('ZREM', K_MEMBERS, me)
  redis.call('HDEL', K_SHARES, me)
  redis.call('HDEL', K_REACHES, me)
else
  redis.call('ZADD', K_MEMBERS, exact(now + rules.leaseMs), me)
end
local members = redis.call('ZCARD', K_MEMBERS)
local share = shareOf(members)
if not request.leaving then
  redis.call('HSET', K_SHARES, me, share)
end

-- The members that may be sending on their own right now, and the room the log leaves them.
local lapsedIds = redis.call('ZRANGEBYSCORE', K_MEMBERS, '-inf', exact(now))
local lapsedShares = 0
for _, id in ipairs(lapsedIds) do
  lapsedShares = lapsedShares + (tonumber(redis.call('HGET', K_SHARES, id)) or share)
end
local effective = math.max(1, limit - lapsedShares)

-- ------------------------------------------------------------------ the horizon

-- This member's horizon, its pending raise and when that applies; nil for a member not listed.
local function reachOf(id)
  local record = redis.call('HGET', K_REACHES, id)
  if not record then
    return nil
  end
  local current, raise, raiseAt = string.match(record, '^([^|]*)|([^|]*)|([^|]*)$')
  return tonumber(current), tonumber(raise), tonumber(raiseAt)
end

-- A shorter horizon applies at once (grants only reach less far); a longer one a lease after it
-- was asked for: a member that last heard from Redis before the ask, and went on its own, was told
-- a reach that holds until its lease ended, and the fleet subtracts its share from then on.
local horizon = baseHorizon
if not request.leaving then
  local current, raise, raiseAt = reachOf(me)
  current = current or baseHorizon
  if raise and now >= raiseAt then
    current, raise, raiseAt = raise, nil, nil
  end
  local asked = math.max(rules.horizonMs, baseHorizon)
  if asked <= current then
    current, raise, raiseAt = asked, nil, nil
  elseif not raise or asked > raise then
    raise, raiseAt = asked, now + rules.leaseMs
  else
    raise = asked
  end
  horizon = current
  redis.call('HSET', K_REACHES, me, table.concat({ exact(current), raise and exact(raise) or '', raiseAt and exact(raiseAt) or '' }, '|'))
end

-- Every member grants as far ahead as the live member that needs it furthest: a grant one replica
-- makes for another's caller must reach that caller in time. `reach` adds the raises on their way
-- and the members whose lease lapsed (they may come back with theirs).
local reach = horizon
local listedMembers = redis.call('ZRANGE', K_MEMBERS, 0, -1, 'WITHSCORES')
for i = 1, #listedMembers, 2 do
  local current, raise = reachOf(listedMembers[i])
  if current and tonumber(listedMembers[i + 1]) > now then
    horizon = math.max(horizon, current)
  end
  reach = math.max(reach, current or 0, raise or 0)
end

-- ------------------------------------------------------------------ the log and the tickets

-- Slots older than one span can no longer share a window with a new slot.
redis.call('ZREMRANGEBYSCORE', K_SLOTS, '-inf', '(' .. exact(now - span))

local function queueOf(level)
  if level == 'b' then
    return K_QUEUE_B
  end
  return K_QUEUE_I
end

local function parseTicket(member)
  local record = redis.call('HGET', K_TICKETS, member)
  if not record then
    return nil
  end
  local owner, client, level, weight, rank, start, finish =
    string.match(record, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  return {
    owner = owner, client = client, level = level, weight = tonumber(weight), rank = rank,
    start = tonumber(start), finish = tonumber(finish),
  }
end

local function fairNumber(field)
  return tonumber(redis.call('HGET', K_FAIR, field)) or 0
end

local function lineOf(level, client)
  return level .. '|' .. client .. '|'
end

-- Where a client's next ticket starts when nothing of its line is tagged.
local function firstStart(level, client)
  return math.max(fairNumber('v:' .. level), fairNumber('f:' .. level .. ':' .. client))
end

-- Puts the first ticket of a client's line, tagged, in its level's queue (and the one it
-- replaces there out): after a ticket joins the front of the line, or the first one left.
local function tagFirst(level, client)
  local headField = 'h:' .. level .. ':' .. client
  local line = lineOf(level, client)
  local entry = redis.call('ZRANGEBYLEX', K_LINES, '[' .. line, '(' .. line .. '\255', 'LIMIT', 0, 1)[1]
  local first = entry and string.sub(entry, #line + 3)
  local previous = redis.call('HGET', K_FAIR, headField)
  if previous and previous == first then
    return
  end
  if previous then
    redis.call('ZREM', queueOf(level), previous)
  end
  if not first then
    redis.call('HDEL', K_FAIR, headField)
    return
  end
  local ticket = parseTicket(first)
  local start, finish
  if ticket.rank == '0' then
    start = fairNumber('v:' .. level)
    finish = start
  else
    start = firstStart(level, client)
    finish = start + 1 / ticket.weight
  end
  redis.call('HSET', K_TICKETS, first, table.concat({ ticket.owner, client, level, exact(ticket.weight), ticket.rank, exact(start), exact(finish) }, '|'))
  redis.call('ZADD', queueOf(level), exact(finish), first)
  redis.call('HSET', K_FAIR, headField, first)
end

-- A waiting ticket leaves its line (its client's next ticket comes first if it was first).
local function leaveLine(member, ticket)
  if redis.call('ZREM', K_LINES, lineOf(ticket.level, ticket.client) .. ticket.rank .. '|' .. member) == 1 then
    if redis.call('HGET', K_FAIR, 'h:' .. ticket.level .. ':' .. ticket.client) == member then
      redis.call('ZREM', queueOf(ticket.level), member)
      redis.call('HDEL', K_FAIR, 'h:' .. ticket.level .. ':' .. ticket.client)
      tagFirst(ticket.level, ticket.client)
    end
  end
end

-- A ticket nobody will use: out of its line, and its slot, if it got one, out of the log (a
-- slot whose call never went out may always leave: the log only gets sparser).
local function drop(member)
  local ticket = parseTicket(member)
  if ticket then
    leaveLine(member, ticket)
  end
  redis.call('ZREM', K_SLOTS, member)
  redis.call('HDEL', K_GRANTED, member)
  redis.call('HDEL', K_TICKETS, member)
  redis.call('ZREM', K_DEADLINES, member)
end

for _, member in ipairs(request.cancel or {}) do
  drop(member)
end
-- Waiting tickets whose caller gave up (it may have lost Redis before cancelling), and grants
-- nobody collected.
for _, member in ipairs(redis.call('ZRANGEBYSCORE', K_DEADLINES, '-inf', '(' .. exact(now))) do
  drop(member)
end

-- A replica starved between a slot and the wire wrote its call late: the call counts where it
-- left, so that the slot a span after it, granted later, is placed a span after that. A slot
-- only moves later, and only the slots still ahead of that one are placed from it.
for _, entry in ipairs(request.late or {}) do
  local slot = redis.call('ZSCORE', K_SLOTS, entry[1])
  if slot then
    redis.call('ZADD', K_SLOTS, 'XX', exact(tonumber(slot) + entry[2]), entry[1])
  end
end

-- Named by the call they stand for: carried again (a retried call, a late answer), they count once.
for _, call in ipairs(request.carried or {}) do
  redis.call('ZADD', K_SLOTS, exact(now + call[2]), me .. ':carried:' .. call[1])
end

-- The earliest slot that keeps the invariant, at least `lead` from now.
local function nextSlot(lead)
  local slot = now + lead
  local count = redis.call('ZCARD', K_SLOTS)
  if count > 0 then
    local last = redis.call('ZRANGE', K_SLOTS, -1, -1, 'WITHSCORES')
    slot = math.max(slot, tonumber(last[2]) + span / effective)
  end
  if count >= effective then
    -- The slot `effective` places back must have left the span before the new one enters it.
    local anchor = redis.call('ZRANGE', K_SLOTS, -effective, -effective, 'WITHSCORES')
    slot = math.max(slot, tonumber(anchor[2]) + span)
  end
  return slot
end

-- ------------------------------------------------------------------ a caller asking for a slot

local reply = { now = exact(now), grants = {}, lease = rules.leaseMs, share = share, members = members, lapsed = #lapsedIds }
local asked = request.ticket
local askedMember

if asked then
  if asked.replacing and asked.replacing ~= '' then
    drop(asked.replacing)
  end
  local level = asked.level
  local queue = queueOf(level)
  local line = lineOf(level, asked.client)
  local rank = asked.front and '0' or '1'

  -- When the ticket would be served: the slots before it, spaced as the log spaces them, shared
  -- with the other level as the credit shares them. Before it go its client's line, and of every
  -- other waiting client the tickets that finish first, counting those it will still send while
  -- it keeps waiting (a waiting client is taken to keep asking).
  local ahead = 0
  local finish = fairNumber('v:' .. level)
  if not asked.front then
    ahead = redis.call('ZLEXCOUNT', K_LINES, '[' .. line, '(' .. line .. '\255')
    local normal = redis.call('ZLEXCOUNT', K_LINES, '[' .. line .. '1|', '(' .. line .. '1|\255')
    local firstMember = redis.call('HGET', K_FAIR, 'h:' .. level .. ':' .. asked.client)
    local first = firstMember and parseTicket(firstMember)
    local start
    if first and first.rank == '1' then
      start = first.start
    else
      start = firstStart(level, asked.client)
    end
    finish = start + (normal + 1) / asked.weight
  end
  local heads = redis.call('ZRANGEBYSCORE', queue, '-inf', exact(finish), 'WITHSCORES')
  for i = 1, #heads, 2 do
    local other = parseTicket(heads[i])
    if other and other.client ~= asked.client then
      ahead = ahead + math.floor((finish - tonumber(heads[i + 1])) * other.weight + rules.tolerance) + 1
    end
  end
  local spacing = span / effective
  local others = redis.call('ZCARD', queueOf(level == 'b' and 'i' or 'b'))
  local slotsBefore = ahead
  if level == 'b' and others > 0 then
    -- Interactive work goes first, but only what waits now is known: batch waits behind those
    -- tickets, or at worst its minimum share. Interactive work that comes later may delay it past
    -- the estimate; its deadline then ends its wait, as for any ticket.
    local interactiveWaiting = redis.call('ZLEXCOUNT', K_LINES, '[i|', '(i|\255')
    slotsBefore = math.min((ahead + 1) / rules.minShare - 1, ahead + interactiveWaiting)
  elseif level == 'i' and others > 0 then
    slotsBefore = ahead / (1 - rules.minShare)
  end
  local estimate = nextSlot(lead) - now + slotsBefore * spacing
  -- The lead is the answer's way back, not a wait: a caller that would not wait at all still gets
  -- a free slot.
  if estimate > asked.maxWaitMs + lead then
    reply.ticket = { id = asked.id, state = 'refused', estimate = estimate }
  else
    local seq = redis.call('HINCRBY', K_FAIR, 'seq', 1)
    -- The sequence number first: equal finish tags are served in the order the tickets came.
    askedMember = string.format('%012d', seq) .. ':' .. asked.id
    redis.call('HSET', K_TICKETS, askedMember, table.concat({ me, asked.client, level, exact(asked.weight), rank, '', '' }, '|'))
    redis.call('ZADD', K_LINES, 0, line .. rank .. '|' .. askedMember)
    redis.call('ZADD', K_DEADLINES, exact(now + asked.maxWaitMs + lead), askedMember)
    tagFirst(level, asked.client)
    reply.ticket = { id = askedMember, state = 'queued', estimate = estimate }
  end
end

-- ------------------------------------------------------------------ dispatch

-- Which level the next slot goes to, and batch's credit once that slot is granted (kept only
-- then: a ticket dropped instead moves nothing), or nil when nothing waits.
local function nextLevel()
  local interactive = redis.call('ZCARD', K_QUEUE_I)
  local batch = redis.call('ZCARD', K_QUEUE_B)
  local credit = fairNumber('credit')
  if interactive == 0 and batch == 0 then
    return nil
  end
  if batch == 0 then
    return 'i', 0
  end
  if interactive == 0 then
    return 'b', credit
  end
  -- Every slot while both wait earns batch minShare of a slot; a whole one buys it the slot.
  credit = credit + rules.minShare
  if credit + rules.tolerance >= 1 then
    return 'b', credit - 1
  end
  return 'i', credit
end

local dispatchIn = -1
-- Each turn grants a slot or drops a dead ticket; the bound only guards against a corrupt state.
for _ = 1, 10000 do
  if redis.call('ZCARD', K_QUEUE_I) + redis.call('ZCARD', K_QUEUE_B) == 0 then
    break
  end
  local slot = nextSlot(lead)
  if slot > now + horizon then
    dispatchIn = slot - horizon - now
    break
  end
  -- Callers that give up before this slot leave first, so that they do not count as waiting when
  -- the level is chosen (grants nobody collected may go too: their slots are over a span old).
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', K_DEADLINES, '-inf', '(' .. exact(slot))) do
    drop(member)
  end
  local level, credit = nextLevel()
  if not level then
    break
  end
  local head = redis.call('ZRANGE', queueOf(level), 0, 0)[1]
  local ticket = parseTicket(head)
  local lease = ticket and redis.call('ZSCORE', K_MEMBERS, ticket.owner)
  if not ticket or not lease or tonumber(lease) <= now then
    -- The owner lost its lease (died, or is cut off and serves its callers on its own).
    drop(head)
  else
    redis.call('HSET', K_FAIR, 'credit', exact(credit))
    redis.call('HSET', K_FAIR, 'v:' .. ticket.level, exact(math.max(fairNumber('v:' .. ticket.level), ticket.start)))
    if ticket.rank == '1' then
      redis.call('HSET', K_FAIR, 'f:' .. ticket.level .. ':' .. ticket.client, exact(ticket.finish))
    end
    leaveLine(head, ticket)
    redis.call('ZADD', K_SLOTS, exact(slot), head)
    redis.call('HSET', K_GRANTED, head, exact(slot))
    redis.call('ZADD', K_DEADLINES, exact(slot + span), head)
  end
end

-- ------------------------------------------------------------------ grants for this replica

local function collect(member)
  local slot = redis.call('HGET', K_GRANTED, member)
  if not slot then
    return nil
  end
  redis.call('HDEL', K_GRANTED, member)
  redis.call('HDEL', K_TICKETS, member)
  redis.call('ZREM', K_DEADLINES, member)
  return tonumber(slot) - now
end

if askedMember then
  local slot = collect(askedMember)
  if slot then
    reply.ticket.state = 'granted'
    reply.ticket.slot = slot
  end
end
for _, member in ipairs(request.waiting or {}) do
  local slot = collect(member)
  if slot then
    table.insert(reply.grants, { member, slot })
  end
end

reply.dispatchIn = dispatchIn
reply.horizon = horizon
reply.reach = reach
reply.fleet = {}
local listed = redis.call('ZRANGE', K_MEMBERS, 0, -1, 'WITHSCORES')
for i = 1, #listed, 2 do
  local id = listed[i]
  table.insert(reply.fleet, { id, tonumber(redis.call('HGET', K_SHARES, id)) or share, tonumber(listed[i + 1]) - now })
end
local newest = redis.call('ZRANGE', K_SLOTS, -1, -1, 'WITHSCORES')
if newest[2] then
  reply.lastSlot = tonumber(newest[2]) - now
end

-- The budget's keys live as long as they can matter, so an idle fleet leaves nothing behind.
local keep = math.ceil(math.max(rules.memoryMs, span + reach) + 60000)
for _, key in ipairs(KEYS) do
  redis.call('PEXPIRE', key, keep)
end

return cjson.encode(reply)
