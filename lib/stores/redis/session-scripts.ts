/**
 * The Redis store's scripts for sessions and users (the key layout is in ./index.ts). Each one
 * declares its ARGV once (see ./lua.ts); the body reads the arguments as Lua locals of those names.
 */
import { script } from './lua.js'
import { RETENTION } from './lua-logs.js'
import { ENDINGS, RATES, SESSIONS } from './lua-sessions.js'

/** { id, profile, user, rooms, sizes } of an ended session. */
export type EndedReply = [id: string, profile: string, user: string, rooms: string[], sizes: number[]]
/** { id, profile, user, context, lastSeen, rooms } of a session. */
export type SessionReply = [id: string, profile: string, user: string, context: string, lastSeen: string, rooms: string[]]
/** { id, profile, lastSeen } of a member. */
export type MemberReply = [id: string, profile: string, lastSeen: string]

/**
 * Creates a session with its memberships (`all`, its inbox, its user's log, its rooms), each
 * from the log's current end. Checked in this order, nothing changed when refused: the
 * register rate limit (rateKey, counted when the session is created), the user's cap (live
 * sessions), maxSessions (sessions not yet swept).
 * Replies { 1, sizes } or { 0, reason, retryMs }.
 */
export const createSession = script<[1, number[]] | [0, 'full' | 'user-full' | 'limited', number]>()('lpcCreate', {
  id: 'string',
  tokenHash: 'string',
  profile: 'string',
  user: 'string?',
  context: 'string',
  now: 'number',
  sessionTtl: 'number',
  maxSessions: 'number',
  maxPerUser: 'number',
  gcMargin: 'number',
  rateKey: 'string?',
  rateBucket: 'string',
  rateMax: 'number',
  rateWindow: 'number',
  rateCost: 'number',
  historyMax: 'number',
  rooms: 'string[]'
}, `
local rk = nil
if rateKey then
  rk = P .. 'rk:' .. rateBucket .. ':' .. rateKey
  local retry = rateRetry(rk, rateMax, rateWindow, rateCost, now)
  if retry > 0 then return { 0, 'limited', retry } end
end
if user and maxPerUser > 0 then
  local n = 0
  for _, sid in ipairs(redis.call('SMEMBERS', P .. 'u:' .. user)) do
    if alive(sid, now) then n = n + 1 end
  end
  if n >= maxPerUser then return { 0, 'user-full', 0 } end
end
-- (sessions expired but not yet swept count, as in stats().sessions)
if redis.call('ZCARD', P .. 'sessions') >= maxSessions then return { 0, 'full', 0 } end
if rk then rateAdd(rk, rateWindow, rateCost, now, gcMargin) end
local sk = sessionKey(id)
if redis.call('EXISTS', sk) == 1 then removeSession(id, historyMax > 0) end
local allLast = ensureLog('all')
local no = redis.call('HINCRBY', P .. 'joins', 'all', 1)
local fields = { 'tok', tokenHash, 'prof', profile, 'ctx', context, 'ls', num(now), 'ps', 0, 'hu', 0, 'is', 0, 'pm', 0,
  'n', 0, 'no', no, 'rc', #rooms, 'jc', #rooms, 'lc', 0,
  'm:all', encodeMembership({ ack = allLast, dlv = allLast, til = -1, k = 0 }),
  'm:s:' .. id, encodeMembership({ ack = 0, dlv = 0, til = -1, k = 0 }) }
if user then
  local ul = ensureLog('u:' .. user)
  fields[#fields + 1] = 'user'
  fields[#fields + 1] = user
  fields[#fields + 1] = 'm:u:' .. user
  fields[#fields + 1] = encodeMembership({ ack = ul, dlv = ul, til = -1, k = 0 })
  redis.call('SADD', P .. 'u:' .. user, id)
end
local sizes = {}
for k, room in ipairs(rooms) do
  local L = 'r:' .. room
  local last = ensureLog(L)
  local mb = P .. 'mb:' .. L
  redis.call('ZADD', mb, redis.call('HINCRBY', P .. 'joins', L, 1), id)
  fields[#fields + 1] = 'm:' .. L
  fields[#fields + 1] = encodeMembership({ ack = last, dlv = last, til = -1, k = k })
  sizes[k] = redis.call('ZCARD', mb)
end
for _, room in ipairs(rooms) do redis.call('HSET', P .. 'sr:' .. id, room, '') end
redis.call('HSET', sk, unpack(fields))
redis.call('SET', P .. 't:' .. tokenHash, id)
redis.call('ZADD', P .. 'sessions', num(now + sessionTtl), id)
redis.call('ZADD', P .. 'mb:all', no, id)
touch(id, { tok = tokenHash, user = user }, sessionTtl + gcMargin)
return { 1, sizes }
`, [SESSIONS, RATES, ENDINGS])

/**
 * Token → live session: lastSeen and expiry refreshed (even when the rate refuses), and `rate`
 * (rateBucket non-null) counted when the limit allows. Replies 0 (unknown), { -1, retryMs } (limited,
 * nothing counted) or the session.
 */
export const authenticate = script<0 | [-1, number] | SessionReply>()('lpcAuth', {
  tokenHash: 'string',
  now: 'number',
  sessionTtl: 'number',
  gcMargin: 'number',
  rateBucket: 'string?',
  rateMax: 'number',
  rateWindow: 'number',
  rateCost: 'number'
}, `
local id = byToken(tokenHash, now)
if not id then return 0 end
local s = parseSession(id, redis.call('HGETALL', sessionKey(id)))
if not s.tok then return 0 end
-- a refused request is an authenticated request all the same: it keeps the session alive
seen(id, s, now, sessionTtl, gcMargin)
if rateBucket then
  local key = P .. 'rl:' .. rateBucket .. ':' .. id
  local retry = rateRetry(key, rateMax, rateWindow, rateCost, now)
  if retry > 0 then return { -1, retry } end
  rateAdd(key, rateWindow, rateCost, now, gcMargin)
end
return sessionReply(id, s)
`, [SESSIONS, RATES])

/** Gives back one unit of the session's bucket, counted in the current window. */
export const refund = script<null>()('lpcRefund', {
  id: 'string',
  bucket: 'string',
  now: 'number'
}, `
local key = P .. 'rl:' .. bucket .. ':' .. id
local f = redis.call('HMGET', key, 'c', 's', 'w')
local count, start, w = tonumber(f[1]), tonumber(f[2]), tonumber(f[3])
if count and count > 0 and now < start + w then redis.call('HSET', key, 'c', num(count - 1)) end
return false
`)

/** { id, user } of a live session, or null. */
export const lookup = script<[id: string, user: string] | null>()('lpcLookup', {
  id: 'string',
  now: 'number'
}, `
if not alive(id, now) then return false end
local user = redis.call('HGET', sessionKey(id), 'user')
return { id, user or '' }
`, [SESSIONS])

/** Ends the session (even if expired but not yet swept); null when there is none. */
export const endSession = script<EndedReply | null>()('lpcEnd', {
  id: 'string',
  historyMax: 'number'
}, `
if not redis.call('ZSCORE', P .. 'sessions', id) then return false end
local ended = removeSession(id, historyMax > 0)
emit({ type = 'ended', sessionId = id })
return ended
`, [ENDINGS])

/** Ends every session of the user. */
export const endUser = script<EndedReply[]>()('lpcEndUser', {
  user: 'string',
  historyMax: 'number'
}, `
local out = {}
local ids = redis.call('SMEMBERS', P .. 'u:' .. user)
table.sort(ids, function (a, b) return (tonumber(redis.call('HGET', sessionKey(a), 'no')) or 0) < (tonumber(redis.call('HGET', sessionKey(b), 'no')) or 0) end)
for _, id in ipairs(ids) do
  if redis.call('ZSCORE', P .. 'sessions', id) then out[#out + 1] = removeSession(id, historyMax > 0)
  else redis.call('SREM', P .. 'u:' .. user, id) end
end
for _, e in ipairs(out) do emit({ type = 'ended', sessionId = e[1] }) end
return out
`, [ENDINGS])

/** The user's live sessions, oldest first: { id, profile, lastSeen } each. */
export const userSessions = script<MemberReply[]>()('lpcUserSessions', {
  user: 'string',
  now: 'number'
}, `
local rows = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'u:' .. user)) do
  if alive(id, now) then
    local f = redis.call('HMGET', sessionKey(id), 'prof', 'ls', 'no')
    if f[1] then rows[#rows + 1] = { id, f[1], f[2], tonumber(f[3]) } end
  end
end
table.sort(rows, function (a, b) return a[4] < b[4] end)
for _, r in ipairs(rows) do r[4] = nil end
return rows
`, [SESSIONS])

/**
 * Ends at most `limit` sessions expired at `now` (each once: the script is atomic), and trims
 * at most `logs` logs whose head may have expired (the index `P lx`).
 */
export const sweep = script<EndedReply[]>()('lpcSweep', {
  now: 'number',
  limit: 'number',
  logs: 'number',
  messageTtl: 'number',
  maxMailbox: 'number',
  historyMax: 'number',
  historyAge: 'number',
  gcMargin: 'number'
}, `
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'sessions', '-inf', scoreText(now), 'LIMIT', 0, limit)) do
  out[#out + 1] = removeSession(id, historyMax > 0)
end
for _, e in ipairs(out) do emit({ type = 'ended', sessionId = e[1] }) end
for _, L in ipairs(redis.call('ZRANGEBYSCORE', P .. 'lx', '-inf', scoreText(now), 'LIMIT', 0, logs)) do
  local last = logLast(L)
  if last then trimLog(L, last, now) else redis.call('ZREM', P .. 'lx', L) end
end
return out
`, [ENDINGS, RETENTION])

/** { sessions, queued, delivered, dropped } (the counters are null until first written). */
export const stats = script<[sessions: number, queued: string | null, delivered: string | null, dropped: string | null]>()('lpcStats', {}, `
local f = redis.call('HMGET', P .. 'stats', 'queued', 'delivered', 'dropped')
return { redis.call('ZCARD', P .. 'sessions'), f[1], f[2], f[3] }
`)
