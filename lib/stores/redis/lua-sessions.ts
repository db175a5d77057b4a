/**
 * Lua libraries of the Redis store: sessions, their memberships, rate limits (the key layout
 * is in ./index.ts).
 *
 * A session's memberships are fields of its hash: `m:<L>` for each log it reads now (`all`,
 * `s:<id>`, `u:<user>`, `r:<room>`), `x<n>` for a room membership that ended with entries
 * unread (they were copied into the log `x:<id>:<n>`, see keepUnread). Each value is
 * `ack|dlv|until|k`: positions in the log up to which everything is acknowledged (or dropped)
 * and delivered (or counted missed); `until` the log's last when the membership ended, -1 while
 * it lasts; `k` the order in which the session joined its rooms.
 */
import { lib } from './lua.js'
import { LOGS } from './lua-logs.js'

export const SESSIONS = lib('sessions', {}, [LOGS], `
local function sessionKey (id) return P .. 's:' .. id end
-- Whether the session is alive at now (in the expiry index, not yet expired).
local function alive (id, now)
  local score = redis.call('ZSCORE', P .. 'sessions', id)
  return score and tonumber(score) > now
end
-- The id of the live session of a token hash, or nil.
local function byToken (tokenHash, now)
  local id = redis.call('GET', P .. 't:' .. tokenHash)
  if id and alive(id, now) then return id end
  return nil
end
local function membership (v)
  local a, d, u, k = string.match(v, '^(%-?%d+)|(%-?%d+)|(%-?%d+)|(%d+)$')
  return { ack = tonumber(a), dlv = tonumber(d), til = tonumber(u), k = tonumber(k) }
end
local function encodeMembership (m) return num(m.ack) .. '|' .. num(m.dlv) .. '|' .. num(m.til) .. '|' .. num(m.k) end
-- The hash (HGETALL) of session id as a table of its plain fields, with ms: its memberships
-- ({ f = field, L = log, ack, dlv, til, k }) and rooms: its rooms in join order.
local function parseSession (id, h)
  local s, ms, rooms = {}, {}, {}
  for i = 1, #h, 2 do
    local f = h[i]
    local c = string.byte(f, 1)
    local L = nil
    if c == 109 and string.byte(f, 2) == 58 then L = string.sub(f, 3) -- 'm:<log>'
    elseif c == 120 then -- 'x<n>': the copy x:<id>:<n>
      local n = string.match(f, '^x(%d+)$')
      if n then L = 'x:' .. id .. ':' .. n end
    end
    if L then
      local m = membership(h[i + 1])
      m.f, m.L = f, L
      ms[#ms + 1] = m
      if m.til < 0 and isRoom(L) then rooms[#rooms + 1] = m end
    else
      s[f] = h[i + 1]
    end
  end
  table.sort(rooms, function (a, b) return a.k < b.k end)
  s.roomMs = rooms
  s.rooms = {}
  for i = 1, #rooms do s.rooms[i] = string.sub(rooms[i].L, 3) end
  s.ms = ms
  return s
end
-- The session's public part and its rooms, as scripts reply them.
local function sessionReply (id, s)
  return { id, s.prof, s.user or '', s.ctx, s.ls, s.rooms }
end
-- Backstop TTLs of the session's keys (expiry itself is decided with now and the index).
local function touch (id, s, ms)
  redis.call('PEXPIRE', sessionKey(id), ms)
  redis.call('PEXPIRE', P .. 't:' .. s.tok, ms)
  if s.user and s.user ~= '' then
    -- shared by the user's sessions: only ever extended
    local key = P .. 'u:' .. s.user
    local ttl = redis.call('PTTL', key)
    if ttl == -1 or (ttl >= 0 and ttl < ms) then redis.call('PEXPIRE', key, ms) end
  end
end
-- An authenticated request: lastSeen is now, and the session lives sessionTtl from now (or
-- from the end of the poll it holds).
local function seen (id, s, now, sessionTtl, gcMargin)
  local base = math.max(now, tonumber(s.hu))
  redis.call('ZADD', P .. 'sessions', num(base + sessionTtl), id)
  redis.call('HSET', sessionKey(id), 'ls', num(now))
  s.ls = num(now)
  touch(id, s, base - now + sessionTtl + gcMargin)
end
`)

/** Fixed rate windows, counted in the scripts that authenticate or create. */
export const RATES = lib('rates', {}, [], `
-- Rate windows: a hash (c: count, s: start, w: length) per bucket and session or key.
-- The ms to wait before cost may be counted at now in the window of key; 0: allowed now.
local function rateRetry (key, max, window, cost, now)
  local f = redis.call('HMGET', key, 'c', 's', 'w')
  local count, start, w = tonumber(f[1]), tonumber(f[2]), tonumber(f[3])
  if not count or now >= start + w then
    if cost > max then return math.max(1, window) end
    return 0
  end
  if count + cost > max then return math.max(1, start + w - now) end
  return 0
end
-- Counts cost (allowed by rateRetry), starting a new window when the last one is over.
local function rateAdd (key, window, cost, now, gcMargin)
  local f = redis.call('HMGET', key, 'c', 's', 'w')
  local count, start, w = tonumber(f[1]), tonumber(f[2]), tonumber(f[3])
  if not count or now >= start + w then
    count, start, w = 0, now, window
    redis.call('HSET', key, 's', num(start), 'w', num(w))
    redis.call('PEXPIRE', key, num(w + gcMargin))
  end
  redis.call('HSET', key, 'c', num(count + cost))
end
`)

/** How memberships and sessions end: copies of what is unread, rooms left, sessions removed. */
export const ENDINGS = lib('endings', {}, [SESSIONS], `
-- A room membership m of session id ended at the log's last, until: what is unread stays the
-- session's own, copied (at most maxMailbox entries: older ones would overflow anyway) into a
-- log x:<id>:<n> that only it reads, so that the room's log never waits for a former member.
local function keepUnread (id, m, til, maxMailbox, ttl)
  if m.ack >= til then return end
  local sk = sessionKey(id)
  local lk = logKey(m.L)
  local trimmed = til - redis.call('ZCARD', lk)
  local start = math.max(m.ack + 1, trimmed + 1, til - maxMailbox + 1)
  if start - 1 > m.dlv then
    local lost = start - 1 - m.dlv
    redis.call('HINCRBY', sk, 'pm', lost)
    stat('dropped', lost)
  end
  if start > til then return end
  local n = redis.call('HINCRBY', sk, 'lc', 1)
  local ck = logKey('x:' .. id .. ':' .. n)
  local last = til - trimmed - 1
  for r = start - trimmed - 1, last, 500 do
    local rows = redis.call('ZRANGE', lk, r, math.min(r + 499, last), 'WITHSCORES')
    local args = {}
    for i = 1, #rows, 2 do
      args[#args + 1] = rows[i + 1]
      args[#args + 1] = rows[i]
    end
    if #args > 0 then redis.call('ZADD', ck, unpack(args)) end
  end
  redis.call('PEXPIRE', ck, ttl)
  redis.call('HSET', sk, 'x' .. n, encodeMembership({ ack = 0, dlv = math.max(0, m.dlv - start + 1), til = til - start + 1, k = 0 }))
end
-- Takes the session out of room membership m's member set; history: whether rooms keep
-- history (then a room nobody is in stays while it has entries). Returns the room's size.
local function leaveRoom (id, m, history)
  redis.call('HDEL', sessionKey(id), m.f)
  local mb = P .. 'mb:' .. m.L
  redis.call('ZREM', mb, id)
  local size = redis.call('ZCARD', mb)
  if size == 0 then roomLeft(m.L, history) end
  return size
end
-- Deletes every key of the session and takes it out of its rooms (history: as in leaveRoom).
-- Emits nothing. Returns { id, profile, user, rooms, sizes }.
local function removeSession (id, history)
  local sk = sessionKey(id)
  local s = parseSession(id, redis.call('HGETALL', sk))
  local srk = P .. 'sr:' .. id
  if not s.tok then
    -- the hash is gone (its backstop TTL): its rooms are still known from sr:
    local names = redis.call('HKEYS', srk)
    table.sort(names)
    for i, room in ipairs(names) do
      s.roomMs[i] = { f = 'm:r:' .. room, L = 'r:' .. room }
      s.rooms[i] = room
    end
  end
  redis.call('DEL', srk)
  local sizes = {}
  for i, m in ipairs(s.roomMs) do sizes[i] = leaveRoom(id, m, history) end
  for _, m in ipairs(s.ms) do
    if isCopy(m.L) then redis.call('DEL', logKey(m.L)) end
  end
  redis.call('ZREM', P .. 'mb:all', id)
  deleteLog('s:' .. id)
  local user = s.user or ''
  if user ~= '' then
    local uk = P .. 'u:' .. user
    redis.call('SREM', uk, id)
    if redis.call('SCARD', uk) == 0 then deleteLog('u:' .. user) end
  end
  redis.call('DEL', sk)
  if s.tok then redis.call('DEL', P .. 't:' .. s.tok) end
  redis.call('ZREM', P .. 'sessions', id)
  return { id, s.prof or 'null', user, s.rooms, sizes }
end
`)
