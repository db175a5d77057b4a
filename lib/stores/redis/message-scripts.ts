/**
 * The Redis store's scripts for messages and polls (the key layout is in ./index.ts). Each one
 * declares its ARGV once (see ./lua.ts); the body reads the arguments as Lua locals of those names.
 */
import { script } from './lua.js'

/**
 * Appends the message to every recipient's mailbox and stores its body once; returns the number of
 * recipients. `kind` is the target's ('all', 'room', 'session'), `target` its room or session id
 * ('' for all), `bodyTtl` the body key's TTL (messageTtl + gcMargin).
 */
export const publish = script<number>()('lpcPublish', {
  messageId: 'string',
  json: 'string',
  now: 'number',
  messageTtl: 'number',
  maxMailbox: 'number',
  bodyTtl: 'number',
  kind: 'string',
  target: 'string',
  ts: 'number'
}, `
local zk = P .. 'sessions'
local ids
if kind == 'all' then
  ids = redis.call('ZRANGEBYSCORE', zk, above(now), '+inf')
else
  local candidates
  if kind == 'room' then candidates = redis.call('SMEMBERS', P .. 'r:' .. target) else candidates = { target } end
  ids = {}
  for _, id in ipairs(candidates) do
    local score = redis.call('ZSCORE', zk, id)
    if not score then
      if kind == 'room' then redis.call('SREM', P .. 'r:' .. target, id) end
    elseif tonumber(score) > now then
      ids[#ids + 1] = id
    end
  end
end
local entry = num(ts + messageTtl) .. '|' .. messageId
local removed, dropped = 0, 0
local recipients = {}
for _, id in ipairs(ids) do
  local sk = P .. 's:' .. id
  local mk = P .. 'mb:' .. id
  local f = redis.call('HMGET', sk, 'ns', 'is')
  -- (a session hash can only be missing after its backstop TTL: skip it, the sweep removes it)
  if f[1] then
    recipients[#recipients + 1] = id
    local ns, issued = tonumber(f[1]), tonumber(f[2])
    local len = redis.call('LLEN', mk)
    local lost = 0
    -- expired messages at the head go first, then the oldest beyond the limit
    if len > 0 and expired(redis.call('LINDEX', mk, 0), now) then
      local r, d = expireHead(mk, ns - len + 1, issued, now)
      len, removed, lost = len - r, removed + r, lost + d
    end
    if len >= maxMailbox then
      local n = len - maxMailbox + 1
      local head = ns - len + 1
      local undelivered = (head + n - 1) - math.max(issued, head - 1)
      redis.call('LTRIM', mk, n, -1)
      len, removed = len - n, removed + n
      if undelivered > 0 then lost = lost + undelivered end
    end
    if lost > 0 then
      redis.call('HINCRBY', sk, 'mi', lost)
      dropped = dropped + lost
    end
    redis.call('HSET', sk, 'ns', ns + 1)
    redis.call('RPUSH', mk, entry)
    if len == 0 then sameTtl(id, mk) end
  end
end
ids = recipients
if #ids == 0 then return 0 end
redis.call('SET', P .. 'm:' .. messageId, json, 'PX', num(bodyTtl))
local sk = P .. 'stats'
redis.call('HINCRBY', sk, 'queued', #ids - removed)
if dropped > 0 then redis.call('HINCRBY', sk, 'dropped', dropped) end
-- A wake names its recipients, unless there are so many that waking everybody (a spurious
-- wake-up costs a held poll one read) is cheaper than a huge event sent to every instance.
if kind == 'all' or #ids > 5000 then
  redis.call('PUBLISH', P .. 'events', '{"type":"wake","sessions":null}')
else
  redis.call('PUBLISH', P .. 'events', cjson.encode({ type = 'wake', sessions = ids }))
end
return #ids
`)

/**
 * Acknowledges everything up to the cursor (null: what was last issued) and returns up to `limit`
 * messages after it: { cursor, missed, pollSeq, bodies }; -1 for a cursor ahead of anything
 * issued; null when the session is gone.
 */
export const read = script<-1 | null | [cursor: number, missed: number, pollSeq: number, messages: string[]]>()('lpcRead', {
  id: 'string',
  cursor: 'number?',
  limit: 'number',
  now: 'number'
}, `
local sk = P .. 's:' .. id
local f = redis.call('HMGET', sk, 'is', 'ns', 'mi', 'ps')
if not f[1] then return false end
local issued, ns, mi, ps = tonumber(f[1]), tonumber(f[2]), tonumber(f[3]), tonumber(f[4])
local c = cursor or issued
if c > issued then return -1 end
local mk = P .. 'mb:' .. id
local len = redis.call('LLEN', mk)
local head = ns - len + 1
local removed, dropped = 0, 0
-- acknowledge everything up to the cursor
if len > 0 and c >= head then
  local n = math.min(c - head + 1, len)
  redis.call('LTRIM', mk, n, -1)
  head, len, removed = head + n, len - n, removed + n
end
-- drop expired messages from the head
if len > 0 then
  local r, d = expireHead(mk, head, issued, now)
  head, len, removed, dropped = head + r, len - r, removed + r, d
end
-- the messages after the cursor
local out, last, delivered = {}, c, 0
local start = math.max(0, c + 1 - head)
if limit > 0 and start < len then
  local entries = redis.call('LRANGE', mk, start, start + limit - 1)
  local keys = {}
  for i = 1, #entries do
    local e = entries[i]
    keys[i] = P .. 'm:' .. string.sub(e, string.find(e, '|', 1, true) + 1)
  end
  -- MGET in chunks: Lua's unpack() has a stack limit of a few thousand values
  local bodies = {}
  for from = 1, #keys, 1000 do
    local part = redis.call('MGET', unpack(keys, from, math.min(from + 999, #keys)))
    for j = 1, #part do bodies[from + j - 1] = part[j] end
  end
  for i = 1, #entries do
    local seq = head + start + i - 1
    if bodies[i] then
      out[#out + 1] = bodies[i]
      if seq > issued then delivered = delivered + 1 end
    elseif seq > issued then
      dropped = dropped + 1
    end
    last = seq
  end
end
if last > issued then redis.call('HSET', sk, 'is', num(last)) end
if mi ~= 0 then redis.call('HSET', sk, 'mi', 0) end
local st = P .. 'stats'
if removed > 0 then redis.call('HINCRBY', st, 'queued', -removed) end
if delivered > 0 then redis.call('HINCRBY', st, 'delivered', delivered) end
if dropped > 0 then redis.call('HINCRBY', st, 'dropped', dropped) end
return { last, mi + dropped, ps, out }
`)

/** Marks a poll held until now + holdMs and publishes 'poll'; returns its sequence, null when the session is gone. */
export const beginPoll = script<number | null>()('lpcBeginPoll', {
  id: 'string',
  holdMs: 'number',
  now: 'number',
  sessionTtl: 'number',
  gcMargin: 'number'
}, `
local score = redis.call('ZSCORE', P .. 'sessions', id)
if not score or tonumber(score) <= now then return false end
local sk = P .. 's:' .. id
if redis.call('EXISTS', sk) == 0 then return false end
local ps = redis.call('HINCRBY', sk, 'ps', 1)
redis.call('HSET', sk, 'hu', num(now + holdMs))
redis.call('ZADD', P .. 'sessions', num(now + holdMs + sessionTtl), id)
touch(id, holdMs + sessionTtl + gcMargin)
redis.call('PUBLISH', P .. 'events', cjson.encode({ type = 'poll', sessionId = id, seq = ps }))
return ps
`)

/** Ends poll `seq` if it is still the latest: lastSeen becomes now; 1 when it was. */
export const endPoll = script<0 | 1>()('lpcEndPoll', {
  id: 'string',
  seq: 'number',
  now: 'number',
  sessionTtl: 'number',
  gcMargin: 'number'
}, `
local sk = P .. 's:' .. id
if tonumber(redis.call('HGET', sk, 'ps')) ~= seq then return 0 end
if not redis.call('ZSCORE', P .. 'sessions', id) then return 0 end
local ls = tonumber(redis.call('HGET', sk, 'ls'))
redis.call('HSET', sk, 'hu', 0, 'ls', num(math.max(ls, now)))
redis.call('ZADD', P .. 'sessions', num(now + sessionTtl), id)
touch(id, sessionTtl + gcMargin)
return 1
`)
