-- Applies application events to the state shared by the exporter's
-- replicas: the memory of events counted, and the tables of connections,
-- channels and clients between their start and their end. It follows the
-- rules of callstate.State, as the in-memory State does (both are held
-- to them by package statetest), atomically: two replicas never pair the
-- same end twice, nor count the same event twice.
--
-- ARGV: prefix, now (ms, the exporter's clock), pending TTL, open TTL (ms),
-- the caps of the three tables (0: none), the events remembered per minute
-- (0: no cap), how long after its minute's end a minute's memory is kept
-- (ms, by the exporter's clock), the most expired entries dropped per table, the number of facts,
-- then 5 per fact: op, application, entity key, event key, event time.
-- Keys are built from the prefix (a single Redis or Sentinel, not Cluster).
--
-- Returns 4 numbers per fact (flags: 1 duplicate, 2 unremembered; span ms
-- or -1; peak; phase), then 6 drop counts (per table: expired, evicted),
-- then 1 when a table had more expired entries than were dropped.

local P = ARGV[1]
local now = tonumber(ARGV[2])
local ttlPending, ttlOpen = tonumber(ARGV[3]), tonumber(ARGV[4])
local maxes = {tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])}
local perBucket = tonumber(ARGV[8])
local keepMs = tonumber(ARGV[9])
local expireLimit = tonumber(ARGV[10])
local n = tonumber(ARGV[11])

local names = {'connections', 'channels', 'clients'}
local LV = P .. 'lv'
local drops = {0, 0, 0, 0, 0, 0}

local function hk(t) return P .. 't:' .. names[t] end
local function dk(t) return P .. 'd:' .. names[t] end
local function sizeKey(app) return P .. 'sz:' .. app end

-- level moves an application's count of entries of table t.
local function level(t, app, delta)
  local f = t .. ':' .. app
  if redis.call('HINCRBY', LV, f, delta) <= 0 then
    redis.call('HDEL', LV, f)
  end
end

-- An entry is {app, start ms, up ms, members, peak, deadline ms}; the
-- deadline is also its score in d:<table>, which orders the expiries.
local function save(t, key, e) redis.call('HSET', hk(t), key, cmsgpack.pack(e)) end

local function remove(t, key, e)
  redis.call('HDEL', hk(t), key)
  redis.call('ZREM', dk(t), key)
  level(t, e[1], -1)
  if t == 2 then redis.call('ZREM', sizeKey(e[1]), key) end
end

-- drop removes an entry before its end: why 1 expired, 2 evicted.
local function drop(t, key, why)
  local v = redis.call('HGET', hk(t), key)
  if v then
    remove(t, key, cmsgpack.unpack(v))
  else
    redis.call('ZREM', dk(t), key)
  end
  drops[(t - 1) * 2 + why] = drops[(t - 1) * 2 + why] + 1
end

-- expire drops up to expireLimit entries of t whose deadline passed, and
-- says whether it left some.
local function expire(t)
  local keys = redis.call('ZRANGEBYSCORE', dk(t), '-inf', now, 'LIMIT', 0, expireLimit)
  for _, k in ipairs(keys) do drop(t, k, 1) end
  return #keys >= expireLimit
end

-- lookup returns the entry of key, nil when it has none or it expired.
local function lookup(t, key)
  local v = redis.call('HGET', hk(t), key)
  if not v then return nil end
  local e = cmsgpack.unpack(v)
  if e[6] <= now then
    drop(t, key, 1)
    return nil
  end
  return e
end

-- setDeadline moves an entry's deadline, in it and in the expiry order.
local function setDeadline(t, key, e, deadline)
  e[6] = deadline
  redis.call('ZADD', dk(t), deadline, key)
end

-- insert enters key in t, dropping the entry closest to its deadline when
-- t is full.
local function insert(t, key, app, deadline)
  if maxes[t] > 0 and redis.call('HLEN', hk(t)) >= maxes[t] then
    local popped = redis.call('ZPOPMIN', dk(t))
    if popped[1] then
      local why = 2
      if tonumber(popped[2]) <= now then why = 1 end
      drop(t, popped[1], why)
    end
  end
  level(t, app, 1)
  redis.call('ZADD', dk(t), deadline, key)
  return {app, 0, 0, 0, 0, deadline}
end

-- remember returns 1 for an event counted already, 2 when its minute is
-- full (applied unremembered), 0 once remembered.
local function remember(seen, ms)
  local b = math.floor(ms / 60000)
  local k = P .. 'seen:' .. string.format('%d', b)
  if redis.call('SADD', k, seen) == 0 then return 1 end
  local n = redis.call('SCARD', k)
  if perBucket > 0 and n > perBucket then
    redis.call('SREM', k, seen)
    return 2
  end
  if n == 1 then
    -- A new minute: it expires relative to the exporter's clock, not
    -- Redis's, whatever their offset.
    redis.call('PEXPIRE', k, math.max((b + 1) * 60000 + keepMs - now, 1000))
  end
  return 0
end

-- change applies op; it returns span, peak and phase.
local function change(op, app, key, ms)
  if op == 0 then return -1, 0, 0 end
  local t = 3
  if op <= 4 then t = 1 elseif op <= 8 then t = 2 end
  local e = lookup(t, key)
  local span, peak, phase = -1, 0, 0
  if op == 1 then -- connection start
    if not e then e = insert(t, key, app, now + ttlPending) end
    if e[2] == 0 or ms < e[2] then e[2] = ms end
    save(t, key, e)
  elseif op == 2 then -- connection up
    if not e then e = insert(t, key, app, now + ttlOpen) end
    if e[3] == 0 then
      e[3] = ms
      if e[2] ~= 0 and ms >= e[2] then span = ms - e[2] end
      setDeadline(t, key, e, now + ttlOpen)
      save(t, key, e)
    end
  elseif op == 3 or op == 4 then -- connection close, fail
    phase = 2
    if e then
      if e[3] ~= 0 then
        phase = 1
        if ms >= e[3] then span = ms - e[3] end
      else
        phase = 0
      end
      remove(t, key, e)
    end
  elseif op == 5 then -- channel on
    if not e then e = insert(t, key, app, now + ttlOpen) end
    if e[2] == 0 or ms < e[2] then e[2] = ms end
    save(t, key, e)
  elseif op == 6 then -- a client joins
    if not e then e = insert(t, key, app, now + ttlOpen) end
    e[4] = e[4] + 1
    if e[4] > e[5] then e[5] = e[4] end
    save(t, key, e)
    redis.call('ZADD', sizeKey(app), e[4], key)
  elseif op == 7 then -- a client leaves
    if e and e[4] > 0 then
      e[4] = e[4] - 1
      save(t, key, e)
      redis.call('ZADD', sizeKey(e[1]), e[4], key)
    end
  elseif op == 8 then -- channel off
    if e then
      if e[2] ~= 0 and ms >= e[2] then
        span, peak = ms - e[2], e[5]
      end
      remove(t, key, e)
    end
  elseif op == 9 then -- client on
    if not e then save(t, key, insert(t, key, app, now + ttlOpen)) end
  elseif op == 10 then -- client off
    if e then remove(t, key, e) end
  end
  return span, peak, phase
end

local more = 0
for t = 1, 3 do
  if expire(t) then more = 1 end
end
local out = {}
for i = 0, n - 1 do
  local a = 12 + i * 5
  local op, app, key, seen, ms = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  local flags, span, peak, phase = 0, -1, 0, 0
  local r = remember(seen, ms)
  if r == 1 then
    flags = 1
  else
    if r == 2 then flags = 2 end
    span, peak, phase = change(op, app, key, ms)
  end
  out[#out + 1] = flags
  out[#out + 1] = span
  out[#out + 1] = peak
  out[#out + 1] = phase
end
for i = 1, 6 do out[#out + 1] = drops[i] end
out[#out + 1] = more
return out
