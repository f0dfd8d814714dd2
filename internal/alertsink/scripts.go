package alertsink

import "github.com/redis/go-redis/v9"

// prelude is shared by every queue script: the key names (KEYS in the
// order of the k* constants), the clock (ARGV[1], or the server's TIME),
// the lease reaper and the item view. Every script replies
// {status, now, ...}.
const prelude = `
local WAITING, ITEMS, EVT, SINCE, DEADLINE, SLAQ, BREACHED, SLAOUT, CLAIMS, LEASES, CLAIMEDAT, SAVED, DONE, CONVS =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14]
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local RANK = 1e13

local function num(x) return string.format('%.17g', x) end

local function conv_of(m)
  local i = string.find(m, '\0', 1, true)
  if not i then return '' end
  return string.sub(m, i + 1)
end

-- reap returns items whose lease expired to the waiting set with the
-- score they had when claimed: their original priority and age.
local function reap()
  local exp = redis.call('ZRANGEBYSCORE', LEASES, '-inf', num(now), 'LIMIT', 0, 500)
  for _, m in ipairs(exp) do
    local s = redis.call('HGET', SAVED, m)
    if s and redis.call('HEXISTS', ITEMS, m) == 1 then redis.call('ZADD', WAITING, s, m) end
    redis.call('HDEL', CLAIMS, m)
    redis.call('HDEL', CLAIMEDAT, m)
    redis.call('HDEL', SAVED, m)
    redis.call('ZREM', LEASES, m)
  end
end

local function view(m)
  local score = redis.call('ZSCORE', WAITING, m) or redis.call('HGET', SAVED, m) or '0'
  return {m, redis.call('HGET', ITEMS, m) or '{}', redis.call('ZSCORE', SINCE, m) or '0',
    redis.call('HGET', DEADLINE, m) or '0', redis.call('HGET', BREACHED, m) or '',
    redis.call('HGET', CLAIMS, m) or '', redis.call('HGET', CLAIMEDAT, m) or '0',
    redis.call('ZSCORE', LEASES, m) or '0', score, redis.call('ZSCORE', SLAQ, m) and '1' or ''}
end

local function lookup(conv)
  local m = redis.call('HGET', CONVS, conv)
  if not m or redis.call('HEXISTS', ITEMS, m) == 0 then return nil end
  return m
end

-- holder_check: nil when agent holds m, else the reply to give.
local function holder_check(m, agent)
  local holder = redis.call('HGET', CLAIMS, m)
  if holder == agent then return nil end
  if holder then return {'claimed', now, holder} end
  return {'not_claimed', now}
end

local function unclaim(m)
  redis.call('HDEL', CLAIMS, m)
  redis.call('HDEL', CLAIMEDAT, m)
  redis.call('HDEL', SAVED, m)
  redis.call('ZREM', LEASES, m)
end

local function drop(m)
  redis.call('ZREM', WAITING, m)
  redis.call('HDEL', ITEMS, m)
  redis.call('HDEL', EVT, m)
  redis.call('ZREM', SINCE, m)
  redis.call('HDEL', DEADLINE, m)
  redis.call('ZREM', SLAQ, m)
  redis.call('HDEL', BREACHED, m)
  redis.call('ZREM', SLAOUT, m)
  unclaim(m)
  local c = conv_of(m)
  if redis.call('HGET', CONVS, c) == m then redis.call('HDEL', CONVS, c) end
end
`

func script(body string) *redis.Script { return redis.NewScript(prelude + body) }

// pushScript: ARGV now, member, conversation, score, event time, body,
// SLA target ms (0: none).
var pushScript = script(`
local m, conv, sc, evt, body, target = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
if redis.call('ZSCORE', DONE, m) and tonumber(redis.call('HGET', EVT, m) or 0) >= evt then return {'resolved', now} end
if redis.call('HEXISTS', ITEMS, m) == 0 then
  redis.call('ZREM', DONE, m)
  redis.call('ZADD', WAITING, num(sc), m)
  redis.call('HSET', ITEMS, m, body)
  redis.call('HSET', EVT, m, num(evt))
  redis.call('ZADD', SINCE, num(now), m)
  redis.call('HSET', CONVS, conv, m)
  if target > 0 then
    redis.call('HSET', DEADLINE, m, num(now + target))
    redis.call('ZADD', SLAQ, num(now + target), m)
  end
  return {'added', now}
end
-- An escalation raises the item (never lowers it) and may tighten its
-- deadline; a replayed older alert changes nothing.
local claimed = redis.call('HEXISTS', CLAIMS, m) == 1
local cur
if claimed then cur = redis.call('HGET', SAVED, m) else cur = redis.call('ZSCORE', WAITING, m) end
if sc > tonumber(cur or 0) then
  if claimed then redis.call('HSET', SAVED, m, num(sc)) else redis.call('ZADD', WAITING, num(sc), m) end
end
if evt > tonumber(redis.call('HGET', EVT, m) or 0) then
  redis.call('HSET', ITEMS, m, body)
  redis.call('HSET', EVT, m, num(evt))
end
local running = redis.call('ZSCORE', SLAQ, m) or not redis.call('HGET', DEADLINE, m)
if target > 0 and running and redis.call('HEXISTS', BREACHED, m) == 0 then
  local since = tonumber(redis.call('ZSCORE', SINCE, m) or now)
  local d = since + target
  local curd = tonumber(redis.call('HGET', DEADLINE, m) or 0)
  if curd == 0 or d < curd then
    redis.call('HSET', DEADLINE, m, num(d))
    redis.call('ZADD', SLAQ, num(d), m)
  end
end
return {'ok', now}
`)

// listScript: ARGV now, n. The n most urgent waiting items and every
// claimed one.
var listScript = script(`
reap()
local out = {'ok', now}
for _, m in ipairs(redis.call('ZREVRANGE', WAITING, 0, tonumber(ARGV[2]) - 1)) do
  if redis.call('HEXISTS', ITEMS, m) == 1 then table.insert(out, view(m)) end
end
for _, m in ipairs(redis.call('HKEYS', CLAIMS)) do table.insert(out, view(m)) end
return out
`)

// getScript: ARGV now, conversation.
var getScript = script(`
reap()
local m = lookup(ARGV[2])
if not m then return {'not_found', now} end
return {'ok', now, view(m)}
`)

// claimScript: ARGV now, agent, lease ms, conversation ("" = the most
// urgent). Claiming stops the item's SLA clock: a claim is the first
// response.
var claimScript = script(`
reap()
local agent, lease, conv = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local m
if conv ~= '' then
  m = lookup(conv)
  if not m then return {'not_found', now} end
  local holder = redis.call('HGET', CLAIMS, m)
  if holder == agent then
    redis.call('ZADD', LEASES, num(now + lease), m)
    return {'ok', now, view(m)}
  end
  if holder then return {'claimed', now, holder} end
  if not redis.call('ZSCORE', WAITING, m) then return {'not_found', now} end
else
  while true do
    local top = redis.call('ZREVRANGE', WAITING, 0, 0)
    if #top == 0 then return {'empty', now} end
    m = top[1]
    if redis.call('HEXISTS', ITEMS, m) == 1 then break end
    redis.call('ZREM', WAITING, m) -- an entry without a body cannot be worked
  end
end
local s = redis.call('ZSCORE', WAITING, m)
redis.call('ZREM', WAITING, m)
redis.call('HSET', SAVED, m, s)
redis.call('HSET', CLAIMS, m, agent)
redis.call('HSET', CLAIMEDAT, m, num(now))
redis.call('ZADD', LEASES, num(now + lease), m)
redis.call('ZREM', SLAQ, m)
if not redis.call('HGET', DEADLINE, m) then redis.call('HSET', DEADLINE, m, '0') end
redis.call('HSET', CONVS, conv_of(m), m)
return {'ok', now, view(m)}
`)

// extendScript: ARGV now, conversation, agent, lease ms.
var extendScript = script(`
reap()
local m = lookup(ARGV[2])
if not m then return {'not_found', now} end
local refuse = holder_check(m, ARGV[3])
if refuse then return refuse end
redis.call('ZADD', LEASES, num(now + tonumber(ARGV[4])), m)
return {'ok', now, view(m)}
`)

// releaseScript: ARGV now, conversation, agent.
var releaseScript = script(`
reap()
local m = lookup(ARGV[2])
if not m then return {'not_found', now} end
local refuse = holder_check(m, ARGV[3])
if refuse then return refuse end
redis.call('ZADD', WAITING, redis.call('HGET', SAVED, m), m)
unclaim(m)
return {'ok', now, view(m)}
`)

// resolveScript: ARGV now, conversation, agent ("" = remove whoever
// holds it). The resolution remembers the event time it covers for 30
// days after it (DONE: item -> resolution time, EVT keeps the event
// time), so a replay of older alerts does not reopen the conversation.
var resolveScript = script(`
reap()
local m = lookup(ARGV[2])
if not m then return {'not_found', now} end
if ARGV[3] ~= '' then
  local refuse = holder_check(m, ARGV[3])
  if refuse then return refuse end
end
local v = view(m)
local evt = redis.call('HGET', EVT, m)
drop(m)
redis.call('ZADD', DONE, num(now), m)
redis.call('HSET', EVT, m, evt or '0')
for _, old in ipairs(redis.call('ZRANGEBYSCORE', DONE, '-inf', num(now - 30 * 86400000), 'LIMIT', 0, 100)) do
  redis.call('ZREM', DONE, old)
  if redis.call('HEXISTS', ITEMS, old) == 0 then redis.call('HDEL', EVT, old) end
end
return {'ok', now, v}
`)

// eraseScript: ARGV now, then member, conversation pairs of one user.
var eraseScript = script(`
local n = 0
for i = 2, #ARGV, 2 do
  local m = ARGV[i]
  if redis.call('HEXISTS', ITEMS, m) == 1 or redis.call('ZSCORE', WAITING, m) then n = n + 1 end
  drop(m)
  redis.call('ZREM', DONE, m)
end
return {'ok', now, n}
`)

// statsScript: ARGV now. Waiting and claimed counts and when the oldest
// waiting item entered the queue (0: none). Among the claimed+1 oldest
// items at least one waits, if any does.
var statsScript = script(`
reap()
local c = redis.call('HLEN', CLAIMS)
local oldest = 0
for _, m in ipairs(redis.call('ZRANGE', SINCE, 0, c)) do
  if redis.call('HEXISTS', CLAIMS, m) == 0 then
    oldest = tonumber(redis.call('ZSCORE', SINCE, m))
    break
  end
end
return {'ok', now, redis.call('ZCARD', WAITING), c, oldest}
`)

// breachScript: ARGV now, limit, retry ms. Items past their deadline
// while waiting are flagged once (HSETNX), promoted one priority and put
// in the outbox until AckBreach; outbox entries not acknowledged within
// the retry time are handed out again.
var breachScript = script(`
reap()
local limit, retry = tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {'ok', now}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', SLAOUT, '-inf', num(now), 'LIMIT', 0, limit)) do
  if redis.call('HEXISTS', ITEMS, m) == 0 then
    redis.call('ZREM', SLAOUT, m)
  else
    redis.call('ZADD', SLAOUT, num(now + retry), m)
    table.insert(out, view(m))
  end
end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', SLAQ, '-inf', num(now), 'LIMIT', 0, limit)) do
  redis.call('ZREM', SLAQ, m)
  if redis.call('HEXISTS', ITEMS, m) == 1 and redis.call('HEXISTS', CLAIMS, m) == 0
    and redis.call('HSETNX', BREACHED, m, num(now)) == 1 then
    local s = tonumber(redis.call('ZSCORE', WAITING, m))
    if s and s < 3 * RANK then redis.call('ZADD', WAITING, num(s + RANK), m) end
    redis.call('ZADD', SLAOUT, num(now + retry), m)
    table.insert(out, view(m))
  end
end
return out
`)

// ackScript: ARGV now, member.
var ackScript = script(`
redis.call('ZREM', SLAOUT, ARGV[2])
return {'ok', now}
`)
