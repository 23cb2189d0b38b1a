package storage

import "github.com/redis/go-redis/v9"

// The log's invariants live in these scripts, each run atomically by Redis:
// an epoch names the log's current life; its snapshot belongs to it; every
// entry records the epoch and the entry before it, so that a reader notices
// missing entries; the snapshot's entry stays in the stream when it trims.

// fieldOf returns a field of a stream entry's flat field list.
const fieldOf = `
local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return false
end
`

// appendScript appends one entry if the log is whole and the deadline (in
// Redis's own clock, milliseconds) has not passed. KEYS: log, epoch,
// snapshot, rebuild; ARGV: data, deadline.
var appendScript = redis.NewScript(fieldOf + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > tonumber(ARGV[2]) then return redis.error_reply('DEADLINE') end
if redis.call('EXISTS', KEYS[4]) == 1 then return redis.error_reply('REBUILDING') end
local epoch = redis.call('GET', KEYS[2])
if not epoch then return redis.error_reply('BROKEN no epoch') end
local snap = redis.call('HMGET', KEYS[3], 'epoch', 'through')
if snap[1] ~= epoch then return redis.error_reply('BROKEN no snapshot of the epoch') end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local prev = ''
if #last > 0 then
  prev = last[1][1]
  if field(last[1][2], 'e') ~= epoch then return redis.error_reply('BROKEN entry of another epoch') end
elseif snap[2] and snap[2] ~= '' then
  return redis.error_reply('BROKEN the log is gone')
end
return redis.call('XADD', KEYS[1], '*', 'e', epoch, 'p', prev, 'd', ARGV[1])
`)

// saveScript replaces the snapshot unless it belongs to another epoch or a
// newer one of this epoch exists, and trims the entries it covers (the entry
// at its position stays, so that the next entry still names a predecessor
// readers know). KEYS: snapshot, log, epoch; ARGV: through id, data, epoch.
var saveScript = redis.NewScript(`
local function older(a, b)
  if a == '' then return b ~= '' end
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
if redis.call('GET', KEYS[3]) ~= ARGV[3] then return 0 end
local cur = redis.call('HMGET', KEYS[1], 'epoch', 'through')
if cur[1] == ARGV[3] and cur[2] and not older(cur[2], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'through', ARGV[1], 'epoch', ARGV[3], 'data', ARGV[2])
if ARGV[1] ~= '' then redis.call('XTRIM', KEYS[2], 'MINID', ARGV[1]) end
return 1
`)

// probeScript reads the log's state. KEYS: epoch, snapshot, log, rebuild;
// ARGV: the reader's position id. Returns epoch, snapshot epoch, snapshot
// through, last id, last entry's epoch, whether the position's entry is
// there, whether a rebuild runs, Redis's clock in milliseconds.
var probeScript = redis.NewScript(fieldOf + `
local epoch = redis.call('GET', KEYS[1]) or ''
local snap = redis.call('HMGET', KEYS[2], 'epoch', 'through')
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local lastID, lastEpoch = '', ''
if #last > 0 then
  lastID = last[1][1]
  lastEpoch = field(last[1][2], 'e') or ''
end
local has = 1
if ARGV[1] ~= '' and #redis.call('XRANGE', KEYS[3], ARGV[1], ARGV[1]) == 0 then has = 0 end
local t = redis.call('TIME')
return {epoch, snap[1] or '', snap[2] or '', lastID, lastEpoch, tostring(has),
  tostring(redis.call('EXISTS', KEYS[4])), tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))}
`)

// finishRebuildScript starts a new epoch with its snapshot and drops the
// old log, if the caller still holds the right to rebuild. KEYS: epoch,
// snapshot, log, rebuild; ARGV: owner, new epoch, data.
var finishRebuildScript = redis.NewScript(`
if redis.call('GET', KEYS[4]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[2], 'epoch', ARGV[2], 'through', '', 'data', ARGV[3])
redis.call('DEL', KEYS[4])
return 1
`)

// claimScript gives a duty to the caller if nobody holds it, or keeps it
// with the caller who holds it: the same replica goes on doing it while it
// lives, and another takes over within ttl once it is gone.
var claimScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)
