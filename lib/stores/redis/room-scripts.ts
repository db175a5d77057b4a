/**
 * The Redis store's scripts for rooms: joins and leaves, member pages, history pages (the key
 * layout is in ./index.ts). A room's members are a sorted set `P mb:r:<room>` scored by a
 * per-room join counter, so a page is one range from the `after` cursor, in join order.
 */
import { lib, script } from './lua.js'
import { LOGS } from './lua-logs.js'
import { ENDINGS, SESSIONS } from './lua-sessions.js'

/** A page of history: the messages, oldest first, and the cursor of the next page ('' when none). */
export type HistoryReply = [messages: string[], next: string]

/** History pages over a room's log: what its history limits (count and age) keep. */
const HISTORY = lib('history', { historyMax: 'number', historyAge: 'number' }, [LOGS], `
-- The newest limit entries of room log L accepted before g = before (nil: the newest), within
-- the history limits, oldest first; next is the g of the oldest returned when an older one is kept.
local function historyPage (L, before, limit, now)
  if historyMax == 0 or limit <= 0 then return { {}, '' } end
  local last = logLast(L)
  if not last then return { {}, '' } end
  local lk = logKey(L)
  local hi = '+inf'
  if before then hi = '(' .. num(before) end
  -- the position of the newest entry before the cursor
  local p = last - redis.call('ZCARD', lk) + redis.call('ZCOUNT', lk, '-inf', hi)
  local rows = redis.call('ZREVRANGEBYSCORE', lk, hi, '-inf', 'WITHSCORES', 'LIMIT', 0, limit + 1)
  local out, oldest, more = {}, nil, false
  for i = 1, #rows, 2 do
    local pos = p - (i - 1) / 2
    local e = rows[i]
    -- older entries are older still (acceptance order): the first one out of history ends it
    if pos <= last - historyMax or entryTs(e) + historyAge <= now then break end
    if #out == limit then more = true break end
    out[#out + 1] = entryJson(e)
    oldest = rows[i + 1]
  end
  local page = {}
  for i = #out, 1, -1 do page[#page + 1] = out[i] end
  if more then return { page, oldest } end
  return { page, '' }
end
`)

/**
 * Joins the room: a membership from the log's current end (so the joiner sees the join notice
 * published next, and nothing before), in the member set with the next join number; a wake for
 * the session's inbox (its held poll re-reads and learns the room). With history > 0, the last
 * `history` messages before the join, in the same step. Replies { result, size, messages, next }.
 */
export const join = script<[result: 'joined' | 'already' | 'too-many' | 'no-session', size: number, messages: string[], next: string]>()('lpcJoin', {
  id: 'string',
  room: 'string',
  now: 'number',
  maxRooms: 'number',
  history: 'number',
  historyMax: 'number',
  historyAge: 'number'
}, `
if not redis.call('ZSCORE', P .. 'sessions', id) then return { 'no-session', 0, {}, '' } end
local sk = sessionKey(id)
local f = redis.call('HMGET', sk, 'tok', 'rc', 'jc')
if not f[1] then return { 'no-session', 0, {}, '' } end
local L = 'r:' .. room
local mb = P .. 'mb:' .. L
local page = { {}, '' }
if redis.call('HEXISTS', sk, 'm:' .. L) == 1 then
  if history > 0 then page = historyPage(L, nil, history, now) end
  return { 'already', redis.call('ZCARD', mb), page[1], page[2] }
end
if tonumber(f[2]) >= maxRooms then return { 'too-many', 0, {}, '' } end
if history > 0 then page = historyPage(L, nil, history, now) end
local last = ensureLog(L)
redis.call('ZADD', mb, redis.call('HINCRBY', P .. 'joins', L, 1), id)
local k = tonumber(f[3]) + 1
redis.call('HSET', sk, 'm:' .. L, encodeMembership({ ack = last, dlv = last, til = -1, k = k }), 'rc', tonumber(f[2]) + 1, 'jc', k)
redis.call('HSET', P .. 'sr:' .. id, room, '')
emit({ type = 'wake', log = 's:' .. id })
return { 'joined', redis.call('ZCARD', mb), page[1], page[2] }
`, [SESSIONS, HISTORY])

/**
 * Leaves the room: the membership ends at the log's current end (what was accepted while a
 * member and is unread stays the session's own, copied) and the session leaves the member set;
 * a wake for its inbox.
 * Replies { left (1/0), size }.
 */
export const leave = script<[left: 0 | 1, size: number]>()('lpcLeave', {
  id: 'string',
  room: 'string',
  maxMailbox: 'number',
  messageTtl: 'number',
  historyMax: 'number',
  gcMargin: 'number'
}, `
local sk = sessionKey(id)
local L = 'r:' .. room
if redis.call('EXISTS', sk) == 0 then return { 0, 0 } end
local v = redis.call('HGET', sk, 'm:' .. L)
if not v then return { 0, redis.call('ZCARD', P .. 'mb:' .. L) } end
local m = membership(v)
m.f, m.L = 'm:' .. L, L
keepUnread(id, m, logLast(L) or m.dlv, maxMailbox, messageTtl + gcMargin)
local size = leaveRoom(id, m, historyMax > 0)
redis.call('HDEL', P .. 'sr:' .. id, room)
redis.call('HINCRBY', sk, 'rc', -1)
emit({ type = 'wake', log = 's:' .. id })
return { 1, size }
`, [ENDINGS])

/**
 * A page of the live members of a room (or, room nil, of every live session) in join order:
 * up to `limit` after the join number `after`; next is the join number of the last one
 * returned when a live one follows ('' otherwise).
 */
export const members = script<[rows: Array<[id: string, profile: string, lastSeen: string]>, next: string]>()('lpcMembers', {
  room: 'string?',
  after: 'number?',
  limit: 'number',
  now: 'number'
}, `
if limit <= 0 then return { {}, '' } end
local zk = P .. 'mb:all'
if room then zk = P .. 'mb:r:' .. room end
local from = '-inf'
if after then from = '(' .. num(after) end
local out, lastNo, more = {}, nil, false
local chunk = math.min(limit + 1, 200)
while not more do
  local rows = redis.call('ZRANGEBYSCORE', zk, from, '+inf', 'WITHSCORES', 'LIMIT', 0, chunk)
  for i = 1, #rows, 2 do
    local id = rows[i]
    from = '(' .. rows[i + 1]
    if alive(id, now) then
      local f = redis.call('HMGET', sessionKey(id), 'prof', 'ls')
      if f[1] then
        if #out == limit then more = true break end
        out[#out + 1] = { id, f[1], f[2] }
        lastNo = rows[i + 1]
      end
    end
  end
  if #rows < chunk * 2 then break end
end
if more then return { out, lastNo } end
return { out, '' }
`, [SESSIONS])

/** The room's kept messages before the page cursor `before`, newest `limit`, oldest first. */
export const history = script<HistoryReply>()('lpcHistory', {
  room: 'string',
  before: 'number?',
  limit: 'number',
  now: 'number',
  historyMax: 'number',
  historyAge: 'number'
}, `
return historyPage('r:' .. room, before, limit, now)
`, [HISTORY])
