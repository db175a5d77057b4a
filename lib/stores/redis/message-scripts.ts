/**
 * The Redis store's scripts for messages and polls (the key layout is in ./index.ts). Each one
 * declares its ARGV once (see ./lua.ts); the body reads the arguments as Lua locals of those names.
 */
import { lib, script } from './lua.js'
import { RETENTION } from './lua-logs.js'
import { READ } from './lua-read.js'
import { SESSIONS } from './lua-sessions.js'

/** What the scripts that trim logs need to know (RETENTION's arguments). */
const retention = {
  messageTtl: 'number',
  maxMailbox: 'number',
  historyMax: 'number',
  historyAge: 'number',
  gcMargin: 'number'
} as const

/**
 * Appends the message to the log of its target, once, whatever the audience: O(1) plus the
 * trim of the log's head. Publishes one wake naming the log. Returns the number of recipients
 * (counted, never listed): live sessions (all), members (room), 1 or 0 (session: a live one),
 * sessions of the user (user). Nothing is stored when there is nobody to receive it, except a
 * room message while room history is on.
 */
export const publish = script<number>()('lpcPublish', {
  kind: 'string',
  target: 'string',
  json: 'string',
  ts: 'number',
  now: 'number',
  ...retention
}, `
local L, n
if kind == 'all' then
  L = 'all'
  n = redis.call('ZCOUNT', P .. 'sessions', above(now), '+inf')
elseif kind == 'room' then
  L = 'r:' .. target
  n = redis.call('ZCARD', P .. 'mb:' .. L)
  if n == 0 and historyMax == 0 then return 0 end
elseif kind == 'session' then
  L = 's:' .. target
  n = 0
  if alive(target, now) and redis.call('HEXISTS', P .. 's:' .. target, 'n') == 1 then n = 1 end
else
  L = 'u:' .. target
  n = redis.call('SCARD', P .. 'u:' .. target)
end
if n == 0 and kind ~= 'room' then return 0 end
local last = ensureLog(L)
local g = redis.call('INCR', P .. 'g')
appendLog(L, last, g, ts, json, now)
if n > 0 then
  emit({ type = 'wake', log = L })
else
  roomLeft(L, true) -- a room nobody is in, kept for its history: its count lives as long as its entries
end
return n
`, [RETENTION, SESSIONS])

/** What a poll and a read answer: the read's result and the session's poll sequence and rooms. */
type ReadReply = [messages: string[], cursor: number, missed: number, pollSeq: number, rooms: string[], user: string]

/** Ends the hold with sequence seq when it is the session's latest: idle time starts now. */
const HOLD = lib('hold', {}, [SESSIONS], `
local function endHold (id, s, seq, now, sessionTtl, gcMargin)
  -- an older poll ending must not cut the hold of a newer one
  if tonumber(s.ps) ~= seq then return end
  local ls = tonumber(s.ls)
  if tonumber(s.hu) ~= 0 then
    s.hu = '0'
    ls = math.max(ls, now)
  elseif alive(id, now) and now > ls then
    ls = now
  else
    return
  end
  s.ls = num(ls)
  redis.call('HSET', P .. 's:' .. id, 'hu', 0, 'ls', s.ls)
  redis.call('ZADD', P .. 'sessions', num(ls + sessionTtl), id)
  touch(id, s, ls - now + sessionTtl + gcMargin)
end
`)

/**
 * GET /poll in one call: token → live session, read, and when there is nothing to answer and
 * holdMs > 0 (and limit > 0), the hold begins: the poll sequence grows and a 'poll' event goes
 * out. lastSeen and expiry are refreshed in any case (with the hold's end when held). Replies 0 (no session), -1 (bad cursor), or
 * { session..., read..., seq } with seq 0 when not held.
 */
export const poll = script<0 | -1 | [
  id: string, profile: string, user: string, context: string, lastSeen: string, rooms: string[],
  messages: string[], cursor: number, missed: number, pollSeq: number, seq: number
]>()('lpcPoll', {
  tokenHash: 'string',
  cursor: 'number?',
  holdMs: 'number',
  limit: 'number',
  maxBytes: 'number',
  now: 'number',
  sessionTtl: 'number',
  ...retention
}, `
local id = byToken(tokenHash, now)
if not id then return 0 end
local sk = P .. 's:' .. id
local s = parseSession(id, redis.call('HGETALL', sk))
if not s.tok then return 0 end
local r = readMailbox(id, s, cursor, limit, maxBytes, now)
if not r then
  seen(id, s, now, sessionTtl, gcMargin)
  return -1
end
local seq = 0
if #r[1] == 0 and r[3] == 0 and holdMs > 0 and limit > 0 then
  -- the hold begins: the session lives until sessionTtl after it ends (seen, in one update)
  seq = tonumber(s.ps) + 1
  s.ps, s.hu, s.ls = num(seq), num(now + holdMs), num(now)
  redis.call('HSET', sk, 'ps', s.ps, 'hu', s.hu, 'ls', s.ls)
  redis.call('ZADD', P .. 'sessions', num(now + holdMs + sessionTtl), id)
  touch(id, s, holdMs + sessionTtl + gcMargin)
  emit({ type = 'poll', sessionId = id, seq = seq })
else
  seen(id, s, now, sessionTtl, gcMargin)
end
return { id, s.prof, s.user or '', s.ctx, s.ls, s.rooms, r[1], r[2], r[3], tonumber(s.ps), seq }
`, [READ, HOLD])

/**
 * Reads again (a held poll woken, or a read of its own): acknowledges up to the cursor, returns
 * what follows. With seq (the held poll's), a result to be answered (messages or missed) ends
 * that hold in the same call. Replies 0 (no session), -1 (bad cursor), or the read.
 */
export const read = script<0 | -1 | ReadReply>()('lpcRead', {
  id: 'string',
  cursor: 'number?',
  limit: 'number',
  maxBytes: 'number',
  now: 'number',
  seq: 'number?',
  sessionTtl: 'number',
  ...retention
}, `
local sk = P .. 's:' .. id
local s = parseSession(id, redis.call('HGETALL', sk))
if not s.tok then return 0 end
local r = readMailbox(id, s, cursor, limit, maxBytes, now)
if not r then return -1 end
if seq and (#r[1] > 0 or r[3] > 0) then endHold(id, s, seq, now, sessionTtl, gcMargin) end
return { r[1], r[2], r[3], tonumber(s.ps), s.rooms, s.user or '' }
`, [READ, HOLD])

/** The hold with sequence seq ended (answered, timed out, aborted). */
export const endPoll = script<null>()('lpcEndPoll', {
  id: 'string',
  seq: 'number',
  now: 'number',
  sessionTtl: 'number',
  gcMargin: 'number'
}, `
local sk = P .. 's:' .. id
local f = redis.call('HMGET', sk, 'tok', 'ps', 'hu', 'ls', 'user')
if not f[1] or not redis.call('ZSCORE', P .. 'sessions', id) then return false end
endHold(id, { tok = f[1], ps = f[2], hu = f[3], ls = f[4], user = f[5] }, seq, now, sessionTtl, gcMargin)
return false
`, [HOLD])
