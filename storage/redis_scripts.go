package storage

import "github.com/redis/go-redis/v9"

// The log's invariants live in these scripts, each run atomically by Redis:
// an epoch names the log's current life; its snapshot belongs to it; every
// entry records the epoch and the entry before it, so that a reader notices
// missing entries; the snapshot's entry stays in the stream when it trims;
// the stream of an epoch exists from its start (an empty stream), so that
// its loss is noticed even before the first snapshot.
//
// A key holding a value of another type than the log put there (a stray
// SET, HSET or LPUSH) is a lost key, as if it had been deleted: the scripts
// look at each key's type before they use it, so that Redis never refuses
// them with WRONGTYPE, which would stop every replica for good.

// luaHelpers are the functions the scripts share.
const luaHelpers = `
local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return false
end
local function kind(key) return redis.call('TYPE', key)['ok'] end
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function broken(what) return redis.error_reply('BROKEN ' .. what) end
local function holds(key, k, want) return key .. ' holds a ' .. k .. ', not a ' .. want end
`

// appendScript appends one entry if the log is whole and the deadline (in
// Redis's own clock, milliseconds) has not passed. KEYS: log, epoch,
// snapshot, rebuild; ARGV: data, deadline. The snapshot's field "stream"
// names the epoch whose stream was created with it (versions before this
// one created none).
var appendScript = redis.NewScript(luaHelpers + `
if nowMs() > tonumber(ARGV[2]) then return redis.error_reply('DEADLINE') end
if redis.call('EXISTS', KEYS[4]) == 1 then return redis.error_reply('REBUILDING') end
local k = kind(KEYS[2])
if k == 'none' then return broken('no epoch') end
if k ~= 'string' then return broken(holds(KEYS[2], k, 'string')) end
local epoch = redis.call('GET', KEYS[2])
k = kind(KEYS[3])
if k == 'none' then return broken('no snapshot of the epoch') end
if k ~= 'hash' then return broken(holds(KEYS[3], k, 'hash')) end
local snap = redis.call('HMGET', KEYS[3], 'epoch', 'through', 'stream')
if snap[1] ~= epoch then return broken('no snapshot of the epoch') end
local trimmed = snap[2] and snap[2] ~= ''
if trimmed and not string.match(snap[2], '^%d+%-%d+$') then return broken('the snapshot names no entry') end
local prev = ''
k = kind(KEYS[1])
if k == 'stream' then
  local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #last > 0 then
    prev = last[1][1]
    if field(last[1][2], 'e') ~= epoch then return broken('entry of another epoch') end
  elseif trimmed then
    return broken('the log is gone')
  end
elseif k ~= 'none' then
  return broken(holds(KEYS[1], k, 'stream'))
elseif trimmed or snap[3] == epoch then
  return broken('the log is gone')
end
return redis.call('XADD', KEYS[1], '*', 'e', epoch, 'p', prev, 'd', ARGV[1])
`)

// saveScript replaces the snapshot unless it belongs to another epoch or a
// newer one of this epoch exists, and trims the entries it covers (the entry
// at its position stays, so that the next entry still names a predecessor
// readers know). KEYS: snapshot, log, epoch; ARGV: through id, data, epoch.
// It does nothing while a key is of another type: a rebuild replaces them.
var saveScript = redis.NewScript(luaHelpers + `
local function older(a, b)
  if a == '' then return b ~= '' end
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not am or not bm then return true end
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
if kind(KEYS[3]) ~= 'string' or redis.call('GET', KEYS[3]) ~= ARGV[3] then return 0 end
local k = kind(KEYS[1])
if k ~= 'hash' and k ~= 'none' then return 0 end
local cur = redis.call('HMGET', KEYS[1], 'epoch', 'through')
if cur[1] == ARGV[3] and cur[2] and not older(cur[2], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'through', ARGV[1], 'epoch', ARGV[3], 'data', ARGV[2])
if ARGV[1] ~= '' and kind(KEYS[2]) == 'stream' then redis.call('XTRIM', KEYS[2], 'MINID', ARGV[1]) end
return 1
`)

// probeScript reads the log's state, publishes the caller's presence and
// returns the other replicas'. KEYS: epoch, snapshot, log, rebuild,
// replicas; ARGV: caller's name, its position id, its presence, the expiry
// given to a lock that has none (ms), how long a presence is kept (ms).
//
// It returns: epoch, snapshot epoch, snapshot through, last id, last
// entry's epoch, whether the position's entry is there, whether a rebuild
// runs, Redis's clock (ms), the types of the epoch, snapshot and log keys,
// the epoch whose stream exists from its start (by the snapshot), what
// Redis answered to the publication if it refused it, what was repaired
// (lines), then name, presence and whether its position's entry is in the
// log for every other replica.
//
// The writes (the publication, the repairs) are pcalls: a Redis that
// refuses writes (full, read-only) still answers the probe.
var probeScript = redis.NewScript(luaHelpers + `
local now = nowMs()
local repaired = {}
local epoch, snapEpoch, snapThrough, snapV = '', '', '', ''
local epochKind, snapKind, logKind = kind(KEYS[1]), kind(KEYS[2]), kind(KEYS[3])
if epochKind == 'string' then epoch = redis.call('GET', KEYS[1]) end
if snapKind == 'hash' then
  local s = redis.call('HMGET', KEYS[2], 'epoch', 'through', 'stream')
  snapEpoch, snapThrough, snapV = s[1] or '', s[2] or '', s[3] or ''
end
local lastID, lastEpoch, has = '', '', '0'
local function inLog(id)
  return logKind == 'stream' and #redis.call('XRANGE', KEYS[3], id, id) > 0
end
if logKind == 'stream' then
  local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
  if #last > 0 then
    lastID = last[1][1]
    lastEpoch = field(last[1][2], 'e') or ''
  end
  if ARGV[2] ~= '' and inLog(ARGV[2]) then has = '1' end
end
local rebuilding = '0'
local k = kind(KEYS[4])
if k ~= 'none' and k ~= 'string' then
  redis.pcall('DEL', KEYS[4])
  repaired[#repaired + 1] = 'dropped ' .. KEYS[4] .. ', which held a ' .. k .. ', not a rebuild lock'
elseif k == 'string' then
  rebuilding = '1'
  if redis.call('PTTL', KEYS[4]) == -1 then
    redis.pcall('PEXPIRE', KEYS[4], ARGV[4])
    repaired[#repaired + 1] = 'the rebuild lock ' .. KEYS[4] .. ' (held by ' .. redis.call('GET', KEYS[4]) ..
      ') had no expiry; it now expires in ' .. ARGV[4] .. ' ms'
  end
end
k = kind(KEYS[5])
if k ~= 'none' and k ~= 'hash' then
  redis.pcall('DEL', KEYS[5])
  repaired[#repaired + 1] = 'dropped ' .. KEYS[5] .. ', which held a ' .. k .. ', not a hash'
end
local refused = ''
local w = redis.pcall('HSET', KEYS[5], ARGV[1], now .. '|' .. ARGV[3])
if type(w) == 'table' and w.err then refused = w.err end
local out = {epoch, snapEpoch, snapThrough, lastID, lastEpoch, has, rebuilding, tostring(now),
  epochKind, snapKind, logKind, snapV, refused, table.concat(repaired, '\n')}
if kind(KEYS[5]) == 'hash' then
  local all = redis.call('HGETALL', KEYS[5])
  for i = 1, #all, 2 do
    local name, v = all[i], all[i + 1]
    local ms, pos = string.match(v, '^(%d+)|([^|]*)')
    if not ms or now - tonumber(ms) > tonumber(ARGV[5]) then
      redis.pcall('HDEL', KEYS[5], name)
    elseif name ~= ARGV[1] then
      local pe, pid = string.match(pos, '^([^/]*)/(%d+%-%d+)$')
      local there = '0'
      if pe and pe == epoch and inLog(pid) then there = '1' end
      out[#out + 1], out[#out + 2], out[#out + 3] = name, v, there
    end
  end
end
return out
`)

// discardScript moves the snapshot aside (kept a day, for its damage to be
// looked at) if it is still the one through ARGV[1]. KEYS: snapshot, its
// new name; ARGV: through, how long it is kept (ms).
var discardScript = redis.NewScript(luaHelpers + `
if kind(KEYS[1]) ~= 'hash' then return 0 end
local through = redis.call('HGET', KEYS[1], 'through') or ''
if through ~= ARGV[1] then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`)

// finishRebuildScript starts a new epoch with its snapshot and an empty
// stream, dropping the old log, if the caller still holds the right to
// rebuild. KEYS: epoch, snapshot, log, rebuild; ARGV: owner, new epoch,
// data.
var finishRebuildScript = redis.NewScript(luaHelpers + `
if kind(KEYS[4]) ~= 'string' or redis.call('GET', KEYS[4]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[3], KEYS[2])
redis.call('XDEL', KEYS[3], redis.call('XADD', KEYS[3], '*', 'e', ARGV[2], 'p', ''))
redis.call('HSET', KEYS[2], 'epoch', ARGV[2], 'through', '', 'data', ARGV[3], 'stream', ARGV[2])
redis.call('DEL', KEYS[4])
return 1
`)

// beginRebuildScript takes the right to rebuild for ttl ms if nobody holds
// it. A lock with no expiry is given one, so that it cannot stand for good;
// a key of another type is no lock. KEYS: rebuild; ARGV: owner, ttl.
var beginRebuildScript = redis.NewScript(luaHelpers + `
local k = kind(KEYS[1])
if k ~= 'none' and k ~= 'string' then redis.call('DEL', KEYS[1]) end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// cancelRebuildScript gives up the right to rebuild if the caller holds it.
// KEYS: rebuild; ARGV: owner.
var cancelRebuildScript = redis.NewScript(luaHelpers + `
if kind(KEYS[1]) == 'string' and redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`)

// claimScript gives a duty to the caller if nobody holds it, or keeps it
// with the caller who holds it: the same replica goes on doing it while it
// lives, and another takes over within ttl once it is gone. A claim with no
// expiry is given one, and a key of another type is no claim.
var claimScript = redis.NewScript(luaHelpers + `
local k = kind(KEYS[1])
if k ~= 'none' and k ~= 'string' then redis.call('DEL', KEYS[1]) end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)
