/**
 * The Redis store's scripts for sessions and rooms (the key layout is in ./index.ts). Each one
 * declares its ARGV once (see ./lua.ts); the body reads the arguments as Lua locals of those names.
 */
import { script } from './lua.js'

/** { id, profile, rooms } of an ended session. */
export type EndedReply = [id: string, profile: string, rooms: string[]]

/** 1 when created, 0 when maxSessions sessions are alive at `now`. */
export const createSession = script<0 | 1>()('lpcCreate', {
  id: 'string',
  tokenHash: 'string',
  profile: 'string',
  now: 'number',
  sessionTtl: 'number',
  maxSessions: 'number',
  gcMargin: 'number',
  rooms: 'string[]'
}, `
if redis.call('ZCOUNT', P .. 'sessions', above(now), '+inf') >= maxSessions then return 0 end
local sk = P .. 's:' .. id
redis.call('DEL', sk, P .. 'sr:' .. id, P .. 'mb:' .. id)
redis.call('HSET', sk, 'tok', tokenHash, 'prof', profile, 'ls', num(now), 'ps', 0, 'hu', 0, 'is', 0, 'ns', 0, 'mi', 0)
redis.call('SET', P .. 't:' .. tokenHash, id)
redis.call('ZADD', P .. 'sessions', num(now + sessionTtl), id)
for _, room in ipairs(rooms) do
  redis.call('SADD', P .. 'r:' .. room, id)
  redis.call('SADD', P .. 'sr:' .. id, room)
end
touch(id, sessionTtl + gcMargin)
return 1
`)

/** The live session of the token hash, its lastSeen and expiry refreshed; null when none. */
export const authenticate = script<[id: string, profile: string, lastSeen: string, rooms: string[]] | null>()('lpcAuth', {
  tokenHash: 'string',
  now: 'number',
  sessionTtl: 'number',
  gcMargin: 'number'
}, `
local id = redis.call('GET', P .. 't:' .. tokenHash)
if not id then return false end
local score = redis.call('ZSCORE', P .. 'sessions', id)
if not score or tonumber(score) <= now then return false end
local sk = P .. 's:' .. id
local f = redis.call('HMGET', sk, 'prof', 'hu')
local base = math.max(now, tonumber(f[2] or 0))
redis.call('ZADD', P .. 'sessions', num(base + sessionTtl), id)
redis.call('HSET', sk, 'ls', num(now))
touch(id, base - now + sessionTtl + gcMargin)
return { id, f[1] or '', num(now), redis.call('SMEMBERS', P .. 'sr:' .. id) }
`)

/** Ends the session (even if expired but not yet swept); null when there is none. */
export const endSession = script<EndedReply | null>()('lpcEnd', {
  id: 'string'
}, `
if not redis.call('ZSCORE', P .. 'sessions', id) then return false end
return endOne(id)
`)

export const join = script<'joined' | 'already' | 'too-many' | 'no-session'>()('lpcJoin', {
  id: 'string',
  room: 'string',
  maxRooms: 'number'
}, `
if not redis.call('ZSCORE', P .. 'sessions', id) then return 'no-session' end
local srk = P .. 'sr:' .. id
if redis.call('SISMEMBER', srk, room) == 1 then return 'already' end
if redis.call('SCARD', srk) >= maxRooms then return 'too-many' end
redis.call('SADD', srk, room)
redis.call('SADD', P .. 'r:' .. room, id)
return 'joined'
`)

/** 1 when the session was in the room. */
export const leave = script<0 | 1>()('lpcLeave', {
  id: 'string',
  room: 'string'
}, `
if redis.call('SREM', P .. 'sr:' .. id, room) == 0 then return 0 end
redis.call('SREM', P .. 'r:' .. room, id)
return 1
`)

/** { id, profile, lastSeen } of the sessions alive at `clock`, in the room or (null) all of them. */
export const members = script<Array<[id: string, profile: string, lastSeen: string]>>()('lpcMembers', {
  room: 'string?',
  clock: 'number'
}, `
local ids
if room == nil then ids = redis.call('ZRANGEBYSCORE', P .. 'sessions', above(clock), '+inf')
else ids = redis.call('SMEMBERS', P .. 'r:' .. room) end
local out = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', P .. 's:' .. id, 'prof', 'ls')
  local score = redis.call('ZSCORE', P .. 'sessions', id)
  if f[2] and score and tonumber(score) > clock then out[#out + 1] = { id, f[1], f[2] } end
end
return out
`)

/** Ends up to `batch` sessions expired at `now`. */
export const sweep = script<EndedReply[]>()('lpcSweep', {
  now: 'number',
  batch: 'number'
}, `
local ids = redis.call('ZRANGEBYSCORE', P .. 'sessions', '-inf', scoreText(now), 'LIMIT', 0, batch)
local out = {}
for _, id in ipairs(ids) do out[#out + 1] = endOne(id) end
return out
`)

/** { sessions, queued, delivered, dropped } (the counters are null until first written). */
export const stats = script<[sessions: number, queued: string | null, delivered: string | null, dropped: string | null]>()('lpcStats', {}, `
local f = redis.call('HMGET', P .. 'stats', 'queued', 'delivered', 'dropped')
return { redis.call('ZCARD', P .. 'sessions'), f[1], f[2], f[3] }
`)
