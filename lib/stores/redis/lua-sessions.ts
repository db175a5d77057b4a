/**
 * Lua libraries of the Redis store: sessions, their memberships, rate limits (the key layout
 * is in ./index.ts).
 *
 * A session's memberships are fields of its hash: `m:<L>` for each log it reads now (`all`,
 * `s:<id>`, `u:<user>`, `r:<room>`), `x<n>:<L>` for a room membership that ended with entries
 * still pending. Each value is `ack|dlv|until|k`: positions in log L up to which everything is
 * acknowledged (or dropped) and delivered (or counted missed); `until` the log's last when the
 * membership ended, -1 while it lasts; `k` the order in which the session joined its rooms.
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
-- A session hash (HGETALL) as a table of its plain fields, with ms: its memberships
-- ({ f = field, L = log, ack, dlv, til, k }) and rooms: its rooms in join order.
local function parseSession (h)
  local s, ms, rooms = {}, {}, {}
  for i = 1, #h, 2 do
    local f = h[i]
    local c = string.byte(f, 1)
    local L = nil
    if c == 109 and string.byte(f, 2) == 58 then L = string.sub(f, 3) -- 'm:'
    elseif c == 120 then L = string.match(f, '^x%d+:(.*)$') end -- 'x<n>:'
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
  for i = 1, #rooms do rooms[i] = string.sub(rooms[i].L, 3) end
  s.ms, s.rooms = ms, rooms
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
    for _, key in ipairs({ P .. 'u:' .. s.user, P .. 'lm:u:' .. s.user }) do
      local ttl = redis.call('PTTL', key)
      if ttl == -1 or (ttl >= 0 and ttl < ms) then redis.call('PEXPIRE', key, ms) end
    end
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
-- Counts cost in a fixed window (hash c: count, s: start, w: length) unless refused; returns
-- 0 when counted, else the ms until the window ends.
local function rateCheck (key, max, window, cost, now, gcMargin)
  local f = redis.call('HMGET', key, 'c', 's', 'w')
  local count, start, w = tonumber(f[1]), tonumber(f[2]), tonumber(f[3])
  if not count or now >= start + w then
    count, start, w = 0, now, window
    redis.call('HSET', key, 'c', 0, 's', num(start), 'w', num(w))
    redis.call('PEXPIRE', key, num(w + gcMargin))
  end
  if count + cost > max then return math.max(1, start + w - now) end
  redis.call('HSET', key, 'c', num(count + cost))
  return 0
end
-- Takes the session out of a room it is a member of (membership m, the log's last last): the
-- membership lingers while entries of the room are pending for it. Returns the room's size.
local function leaveRoom (id, m, last, lingers)
  local sk = sessionKey(id)
  redis.call('HDEL', sk, m.f)
  if lingers and m.ack < last then
    m.til = last
    redis.call('HSET', sk, 'x' .. redis.call('HINCRBY', sk, 'lc', 1) .. ':' .. m.L, encodeMembership(m))
  end
  local mb = P .. 'mb:' .. m.L
  redis.call('ZREM', mb, id)
  local size = redis.call('ZCARD', mb)
  if size == 0 then roomLeft(m.L) end
  return size
end
-- Deletes every key of the session, takes it out of its rooms, and publishes 'ended'.
-- Returns { id, profile, user, rooms, sizes }.
local function endOne (id)
  local sk = sessionKey(id)
  local s = parseSession(redis.call('HGETALL', sk))
  local rooms, sizes = {}, {}
  local current = {}
  for _, m in ipairs(s.ms) do if m.til < 0 and isRoom(m.L) then current[#current + 1] = m end end
  table.sort(current, function (a, b) return a.k < b.k end)
  for _, m in ipairs(current) do
    rooms[#rooms + 1] = string.sub(m.L, 3)
    sizes[#sizes + 1] = leaveRoom(id, m, 0, false)
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
  emit({ type = 'ended', sessionId = id })
  return { id, s.prof or 'null', user, rooms, sizes }
end
`)
