package redis

import goredis "github.com/redis/go-redis/v9"

// The Lua scripts that keep every atomic promise of kv.Store on the server.
// Redis runs a script to completion before it runs any other command, so
// each script is one indivisible step, whatever the number of clients.
//
// Every script gets KEYS[1], the entry (a hash with fields "v", the value,
// and "ver", the version), and KEYS[2], the version counter of the entry's
// bucket. Both carry the same hash tag, so they live in one cluster slot.
//
// Versions are handled as decimal strings on the way in and out: Lua
// numbers are doubles, exact up to 2^53, which a counter incremented once
// per write never reaches.

// scriptLib is prepended to the scripts that write.
const scriptLib = `
-- nextver draws the entry's next version from the bucket counter. cur is
-- the entry's current version (or false): should the counter ever be
-- behind it (a counter lost to a flush or an eviction), the counter jumps
-- past it, so a live entry's version only ever grows.
local function nextver(cur)
  local v = redis.call('INCR', KEYS[2])
  local c = tonumber(cur)
  if c and v <= c then
    v = c + 1
    redis.call('SET', KEYS[2], string.format('%.0f', v))
  end
  return string.format('%.0f', v)
end

-- write stores the value with a new version and expiry, and returns the
-- version.
local function write(cur, value, ttl)
  local v = nextver(cur)
  redis.call('HSET', KEYS[1], 'v', value, 'ver', v)
  redis.call('PEXPIRE', KEYS[1], ttl)
  return v
end
`

// getScript returns {value, version, pttl} or nil.
var getScript = goredis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'v', 'ver')
if not r[2] then return false end
return {r[1], r[2], redis.call('PTTL', KEYS[1])}
`)

// consumeScript is getScript followed by the entry's deletion, in the same
// step: of concurrent callers, exactly one sees the entry.
var consumeScript = goredis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'v', 'ver')
if not r[2] then return false end
local pttl = redis.call('PTTL', KEYS[1])
if pttl < 0 then return {r[1], r[2], pttl} end -- malformed: leave it, report it
redis.call('DEL', KEYS[1])
return {r[1], r[2], pttl}
`)

// setScript: ARGV[1] value, ARGV[2] ttl in milliseconds. Returns the new
// version.
var setScript = goredis.NewScript(scriptLib + `
return write(redis.call('HGET', KEYS[1], 'ver'), ARGV[1], ARGV[2])
`)

// casScript: ARGV[1] value, ARGV[2] ttl in milliseconds, ARGV[3] the
// expected version, "0" for "absent". Returns the new version, or nil when
// the condition does not hold.
var casScript = goredis.NewScript(scriptLib + `
local cur = redis.call('HGET', KEYS[1], 'ver')
if ARGV[3] == '0' then
  if cur then return false end
elseif cur ~= ARGV[3] then
  return false
end
return write(cur, ARGV[1], ARGV[2])
`)

// incrScript: ARGV[1] delta, ARGV[2] ttl in milliseconds, used only when
// the entry is created. Returns {"ok", new value}, {"notcounter"} or
// {"overflow"}; a refused increment changes nothing. The arithmetic is
// HINCRBY's, on 64-bit integers (Lua's doubles would lose precision).
var incrScript = goredis.NewScript(scriptLib + `
-- iscounter reports whether s is a decimal int64 in canonical form (what
-- HINCRBY accepts): no sign but '-', no leading zero, within range.
local function iscounter(s)
  if s == '0' then return true end
  local neg = string.sub(s, 1, 1) == '-'
  local d = neg and string.sub(s, 2) or s
  if not string.match(d, '^[1-9][0-9]*$') then return false end
  local lim = neg and '9223372036854775808' or '9223372036854775807'
  if #d ~= #lim then return #d < #lim end
  for i = 1, #d do
    local a, b = string.byte(d, i), string.byte(lim, i)
    if a ~= b then return a < b end
  end
  return true
end

local cur = redis.call('HMGET', KEYS[1], 'v', 'ver')
if cur[1] and not iscounter(cur[1]) then return {'notcounter'} end
local r = redis.pcall('HINCRBY', KEYS[1], 'v', ARGV[1])
if type(r) == 'table' and r.err then
  if string.find(r.err, 'overflow', 1, true) then return {'overflow'} end
  return r -- any other failure (out of memory...) is an error reply
end
redis.call('HSET', KEYS[1], 'ver', nextver(cur[2]))
if not cur[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {'ok', redis.call('HGET', KEYS[1], 'v')}
`)
