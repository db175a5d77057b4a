/**
 * The Redis mailbox store: several server instances share one Redis, with no sticky sessions.
 *
 * Every step that touches more than one key is one Lua script (registered with `defineCommand`),
 * so it is atomic and costs one round trip: a broadcast to N sessions is one script call.
 * Events (`wake`, `poll`, `ended`) are published from inside those scripts on one channel,
 * `${keyPrefix}events`; every instance has one subscriber connection (made here with
 * `client.duplicate()`) and hands every event, its own included, to its delivery core.
 *
 * Layout (P = keyPrefix):
 * - `P s:{id}`     hash: tok (token hash), prof (profile JSON or ''), ls (lastSeen),
 *                  ps (poll sequence), hu (held-poll deadline, 0 when none), is (highest
 *                  sequence issued to a poll), ns (last sequence appended), mi (missed, unreported)
 * - `P t:{hash}`   token hash → id
 * - `P sessions`   sorted set id → expiry time (the logic's clock is the `now` argument)
 * - `P r:{room}`   set of member ids; `P sr:{id}` set of the session's rooms
 * - `P mb:{id}`    list of `expiresAt|messageId`, oldest first; the head's sequence is
 *                  ns - LLEN + 1 (sequences are contiguous)
 * - `P m:{msgId}`  the serialized message, stored once with a TTL of messageTtl + gcMargin
 * - `P stats`      hash: queued, delivered, dropped
 * Key TTLs are garbage-collection backstops only (for a Redis that no instance sweeps any more);
 * expiry itself is decided with `now`. The sorted set, room sets and `sr:` have none: a sweep,
 * whenever it comes, removes the session from them.
 *
 * Keys are built inside the scripts, so this store needs a single Redis (standalone or
 * Sentinel), not Redis Cluster.
 */
import type { Redis } from 'ioredis'
import { StoreUnavailableError } from '../errors.js'
import type {
  EndedSession,
  MailboxStore,
  Member,
  NewSession,
  OutgoingMessage,
  ReadResult,
  SessionInfo,
  StoreConfig,
  StoreEvent,
  StoreListener,
  StoreStats
} from '../../types/index.js'

export interface RedisStoreOptions {
  /** The application's ioredis client. The store never closes it. */
  client: Redis
  /** Prefix of every key and of the events channel ('lpc:'). Instances that share state use the same one. */
  keyPrefix?: string
  /**
   * Extra lifetime (ms) of Redis key TTLs beyond the logical expiry (30 000). Message bodies live
   * messageTtl + gcMargin; session keys sessionTtl (+ hold) + gcMargin, as a backstop.
   */
  gcMargin?: number
  /** Sessions removed per sweep script call (500); a sweep loops until none are left. */
  sweepBatch?: number
}

type Arg = string | number
type ReadReply = -1 | null | [number, number, number, string[]]
type EndedReply = [string, string, string[]]

/** The scripts, as `defineCommand` adds them to the client. */
interface ScriptCommands {
  lpcCreate (...args: Arg[]): Promise<number>
  lpcAuth (...args: Arg[]): Promise<[string, string, string, string[]] | null>
  lpcEnd (...args: Arg[]): Promise<EndedReply | null>
  lpcJoin (...args: Arg[]): Promise<string>
  lpcLeave (...args: Arg[]): Promise<number>
  lpcMembers (...args: Arg[]): Promise<Array<[string, string, string]>>
  lpcHas (...args: Arg[]): Promise<number>
  lpcPublish (...args: Arg[]): Promise<number>
  lpcRead (...args: Arg[]): Promise<ReadReply>
  lpcBeginPoll (...args: Arg[]): Promise<number | null>
  lpcEndPoll (...args: Arg[]): Promise<number>
  lpcSweep (...args: Arg[]): Promise<EndedReply[]>
  lpcStats (...args: Arg[]): Promise<[number, string | null, string | null, string | null]>
}

type ScriptClient = Redis & ScriptCommands

/* ------------------------------------------------------------------------------------------ */
/* Lua                                                                                        */
/* ------------------------------------------------------------------------------------------ */

// Shared helpers, prepended to every script. ARGV[1] is always the key prefix.
const PRELUDE = `
local P = ARGV[1]
local function num (x) return string.format('%d', x) end
-- Sets the backstop TTL of the session's own keys. Not of its room list (sr:), which is small:
-- whenever the session is swept, even after its other keys timed out, the sweep can still
-- take it out of its rooms.
local function touch (id, ms)
  local sk = P .. 's:' .. id
  local tok = redis.call('HGET', sk, 'tok')
  if not tok then return end
  redis.call('PEXPIRE', sk, ms)
  redis.call('PEXPIRE', P .. 't:' .. tok, ms)
  redis.call('PEXPIRE', P .. 'mb:' .. id, ms)
end
-- Gives a key created after the session the same remaining TTL as the session hash.
local function sameTtl (id, key)
  local ttl = redis.call('PTTL', P .. 's:' .. id)
  if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
end
-- Whether a mailbox entry ('expiresAt|messageId') has expired.
local function expired (e, now)
  return tonumber(string.sub(e, 1, string.find(e, '|', 1, true) - 1)) <= now
end
-- Drops expired entries from the head of a mailbox whose first entry has sequence head.
-- Returns how many were removed and how many of them had never been delivered.
local function expireHead (mk, head, issued, now)
  local removed, dropped = 0, 0
  while true do
    local batch = redis.call('LRANGE', mk, 0, 99)
    local k = 0
    for i = 1, #batch do
      if not expired(batch[i], now) then break end
      k = i
      if head + i - 1 > issued then dropped = dropped + 1 end
    end
    if k > 0 then
      redis.call('LTRIM', mk, k, -1)
      head, removed = head + k, removed + k
    end
    if k < 100 then return removed, dropped end
  end
end
-- Deletes every key of the session and takes it out of its rooms; publishes 'ended'.
local function endOne (id)
  local sk = P .. 's:' .. id
  local f = redis.call('HMGET', sk, 'tok', 'prof')
  local srk = P .. 'sr:' .. id
  local rooms = redis.call('SMEMBERS', srk)
  for _, r in ipairs(rooms) do redis.call('SREM', P .. 'r:' .. r, id) end
  local mk = P .. 'mb:' .. id
  local len = redis.call('LLEN', mk)
  if len > 0 then redis.call('HINCRBY', P .. 'stats', 'queued', -len) end
  redis.call('DEL', sk, srk, mk)
  if f[1] then redis.call('DEL', P .. 't:' .. f[1]) end
  redis.call('ZREM', P .. 'sessions', id)
  redis.call('PUBLISH', P .. 'events', cjson.encode({ type = 'ended', sessionId = id }))
  return { id, f[2] or '', rooms }
end
`

// ARGV: P, id, tokenHash, profile, now, sessionTtl, maxSessions, gcMargin, rooms...
const CREATE = `
local id, now, ttl = ARGV[2], tonumber(ARGV[5]), tonumber(ARGV[6])
if redis.call('ZCOUNT', P .. 'sessions', '(' .. ARGV[5], '+inf') >= tonumber(ARGV[7]) then return 0 end
local sk = P .. 's:' .. id
redis.call('DEL', sk, P .. 'sr:' .. id, P .. 'mb:' .. id)
redis.call('HSET', sk, 'tok', ARGV[3], 'prof', ARGV[4], 'ls', num(now), 'ps', 0, 'hu', 0, 'is', 0, 'ns', 0, 'mi', 0)
redis.call('SET', P .. 't:' .. ARGV[3], id)
redis.call('ZADD', P .. 'sessions', num(now + ttl), id)
for i = 9, #ARGV do
  redis.call('SADD', P .. 'r:' .. ARGV[i], id)
  redis.call('SADD', P .. 'sr:' .. id, ARGV[i])
end
touch(id, ttl + tonumber(ARGV[8]))
return 1
`

// ARGV: P, tokenHash, now, sessionTtl, gcMargin → { id, profile, lastSeen, rooms } or nil
const AUTH = `
local now, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local id = redis.call('GET', P .. 't:' .. ARGV[2])
if not id then return false end
local score = redis.call('ZSCORE', P .. 'sessions', id)
if not score or tonumber(score) <= now then return false end
local sk = P .. 's:' .. id
local f = redis.call('HMGET', sk, 'prof', 'hu')
local base = math.max(now, tonumber(f[2] or 0))
redis.call('ZADD', P .. 'sessions', num(base + ttl), id)
redis.call('HSET', sk, 'ls', num(now))
touch(id, base - now + ttl + tonumber(ARGV[5]))
return { id, f[1] or '', num(now), redis.call('SMEMBERS', P .. 'sr:' .. id) }
`

// ARGV: P, id → { id, profile, rooms } or nil
const END = `
if not redis.call('ZSCORE', P .. 'sessions', ARGV[2]) then return false end
return endOne(ARGV[2])
`

// ARGV: P, id, room, maxRooms
const JOIN = `
local id, room = ARGV[2], ARGV[3]
if not redis.call('ZSCORE', P .. 'sessions', id) then return 'no-session' end
local srk = P .. 'sr:' .. id
if redis.call('SISMEMBER', srk, room) == 1 then return 'already' end
if redis.call('SCARD', srk) >= tonumber(ARGV[4]) then return 'too-many' end
redis.call('SADD', srk, room)
redis.call('SADD', P .. 'r:' .. room, id)
return 'joined'
`

// ARGV: P, id, room
const LEAVE = `
if redis.call('SREM', P .. 'sr:' .. ARGV[2], ARGV[3]) == 0 then return 0 end
redis.call('SREM', P .. 'r:' .. ARGV[3], ARGV[2])
return 1
`

// ARGV: P, room or '', clock → { { id, profile, lastSeen } ... } of the sessions alive at clock
const MEMBERS = `
local clock = tonumber(ARGV[3])
local ids
if ARGV[2] == '' then ids = redis.call('ZRANGEBYSCORE', P .. 'sessions', '(' .. ARGV[3], '+inf')
else ids = redis.call('SMEMBERS', P .. 'r:' .. ARGV[2]) end
local out = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', P .. 's:' .. id, 'prof', 'ls')
  local score = redis.call('ZSCORE', P .. 'sessions', id)
  if f[2] and score and tonumber(score) > clock then out[#out + 1] = { id, f[1], f[2] } end
end
return out
`

// ARGV: P, id, clock → 1 when the session exists and is alive at clock
const HAS = `
local score = redis.call('ZSCORE', P .. 'sessions', ARGV[2])
if score and tonumber(score) > tonumber(ARGV[3]) then return 1 end
return 0
`

// ARGV: P, msgId, json, now, messageTtl, maxMailbox, bodyTtl, kind, target, message ts → recipients
const PUBLISH = `
local mid, now, mttl, max = ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local kind, target = ARGV[8], ARGV[9]
local zk = P .. 'sessions'
local ids
if kind == 'all' then
  ids = redis.call('ZRANGEBYSCORE', zk, '(' .. ARGV[4], '+inf')
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
local entry = num(tonumber(ARGV[10]) + mttl) .. '|' .. mid
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
    if len >= max then
      local n = len - max + 1
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
redis.call('SET', P .. 'm:' .. mid, ARGV[3], 'PX', ARGV[7])
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
`

// ARGV: P, id, cursor or '', limit, now → nil | -1 (bad cursor) | { cursor, missed, pollSeq, { json... } }
const READ = `
local id, limit, now = ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5])
local sk = P .. 's:' .. id
local f = redis.call('HMGET', sk, 'is', 'ns', 'mi', 'ps')
if not f[1] then return false end
local issued, ns, mi, ps = tonumber(f[1]), tonumber(f[2]), tonumber(f[3]), tonumber(f[4])
local c = issued
if ARGV[3] ~= '' then c = tonumber(ARGV[3]) end
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
`

// ARGV: P, id, holdMs, now, sessionTtl, gcMargin → pollSeq or nil
const BEGIN_POLL = `
local id, hold, now, ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local score = redis.call('ZSCORE', P .. 'sessions', id)
if not score or tonumber(score) <= now then return false end
local sk = P .. 's:' .. id
if redis.call('EXISTS', sk) == 0 then return false end
local ps = redis.call('HINCRBY', sk, 'ps', 1)
redis.call('HSET', sk, 'hu', num(now + hold))
redis.call('ZADD', P .. 'sessions', num(now + hold + ttl), id)
touch(id, hold + ttl + tonumber(ARGV[6]))
redis.call('PUBLISH', P .. 'events', cjson.encode({ type = 'poll', sessionId = id, seq = ps }))
return ps
`

// ARGV: P, id, seq, now, sessionTtl, gcMargin
const END_POLL = `
local id, now, ttl = ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5])
local sk = P .. 's:' .. id
if redis.call('HGET', sk, 'ps') ~= ARGV[3] then return 0 end
if not redis.call('ZSCORE', P .. 'sessions', id) then return 0 end
local ls = tonumber(redis.call('HGET', sk, 'ls'))
redis.call('HSET', sk, 'hu', 0, 'ls', num(math.max(ls, now)))
redis.call('ZADD', P .. 'sessions', num(now + ttl), id)
touch(id, ttl + tonumber(ARGV[6]))
return 1
`

// ARGV: P, now, batch → { { id, profile, rooms } ... }
const SWEEP = `
local ids = redis.call('ZRANGEBYSCORE', P .. 'sessions', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do out[#out + 1] = endOne(id) end
return out
`

// ARGV: P → { sessions, queued, delivered, dropped }
const STATS = `
local f = redis.call('HMGET', P .. 'stats', 'queued', 'delivered', 'dropped')
return { redis.call('ZCARD', P .. 'sessions'), f[1], f[2], f[3] }
`

const SCRIPTS: Record<keyof ScriptCommands, string> = {
  lpcCreate: CREATE,
  lpcAuth: AUTH,
  lpcEnd: END,
  lpcJoin: JOIN,
  lpcLeave: LEAVE,
  lpcMembers: MEMBERS,
  lpcHas: HAS,
  lpcPublish: PUBLISH,
  lpcRead: READ,
  lpcBeginPoll: BEGIN_POLL,
  lpcEndPoll: END_POLL,
  lpcSweep: SWEEP,
  lpcStats: STATS
}

/* ------------------------------------------------------------------------------------------ */
/* The store                                                                                  */
/* ------------------------------------------------------------------------------------------ */

function parseProfile (json: string | null | undefined): Record<string, unknown> | null {
  return json ? JSON.parse(json) as Record<string, unknown> : null
}

function toEnded (reply: EndedReply): EndedSession {
  return { id: reply[0], profile: parseProfile(reply[1]), rooms: reply[2] }
}

/** Resolves when the connection is ready; rejects if it ends for good first. */
function whenReady (conn: Redis): Promise<void> {
  if (conn.status === 'ready') return Promise.resolve()
  if (conn.status === 'end') return Promise.reject(new StoreUnavailableError())
  return new Promise((resolve, reject) => {
    const onReady = (): void => { conn.off('end', onEnd); resolve() }
    const onEnd = (): void => { conn.off('ready', onReady); reject(new StoreUnavailableError()) }
    conn.once('ready', onReady)
    conn.once('end', onEnd)
    if (conn.status === 'wait') conn.connect().catch(() => {})
  })
}

export class RedisStore implements MailboxStore {
  readonly keyPrefix: string
  private readonly client: ScriptClient
  private readonly gcMargin: number
  private readonly sweepBatch: number
  private readonly channel: string
  private subscriber: Redis | null = null
  private listener: StoreListener | null = null
  private config: StoreConfig | null = null
  private down = false
  /**
   * The latest `now` any call passed (as the memory store keeps it): `members()` and
   * `hasSession()`, which get no `now`, leave out sessions expired by then but not yet swept.
   */
  private clock = -1
  private closed = false
  /** Rejecters of the commands in flight, so that a lost connection fails them at once. */
  private readonly pending = new Set<(err: Error) => void>()

  constructor (opts: RedisStoreOptions) {
    const { client, keyPrefix = 'lpc:', gcMargin = 30_000, sweepBatch = 500 } = opts ?? {}
    if (client == null || typeof client.duplicate !== 'function' || typeof client.defineCommand !== 'function') {
      throw new TypeError('RedisStore: `client` must be an ioredis Redis instance')
    }
    if (typeof keyPrefix !== 'string') throw new TypeError('RedisStore: `keyPrefix` must be a string')
    if (!Number.isInteger(gcMargin) || gcMargin < 0) throw new TypeError('RedisStore: `gcMargin` must be an integer >= 0')
    if (!Number.isInteger(sweepBatch) || sweepBatch < 1) throw new TypeError('RedisStore: `sweepBatch` must be an integer >= 1')
    this.client = client as ScriptClient
    this.keyPrefix = keyPrefix
    this.gcMargin = gcMargin
    this.sweepBatch = sweepBatch
    this.channel = keyPrefix + 'events'
  }

  async init (config: StoreConfig, listener: StoreListener): Promise<void> {
    this.config = config
    this.listener = listener
    for (const [name, lua] of Object.entries(SCRIPTS)) {
      this.client.defineCommand(name, { numberOfKeys: 0, lua: PRELUDE + lua })
    }
    await whenReady(this.client)
    // Named so that operators (and tests) can tell it in CLIENT LIST; the name allows no spaces.
    const sub = this.client.duplicate({ connectionName: 'lpc-subscriber:' + this.keyPrefix.replace(/[^\x21-\x7e]/g, '_') })
    this.subscriber = sub
    sub.on('error', () => {}) // an outage is reported through 'close' → 'unavailable'
    sub.on('message', this.onMessage)
    await whenReady(sub)
    await sub.subscribe(this.channel)
    sub.on('close', this.onClose)
    sub.on('ready', this.onReady)
    this.client.on('close', this.onClose)
    this.client.on('ready', this.onReady)
  }

  async createSession (session: NewSession, now: number): Promise<boolean> {
    this.tick(now)
    const c = this.cfg()
    const profile = session.profile === null ? '' : JSON.stringify(session.profile)
    const ok = await this.run(() => this.client.lpcCreate(this.keyPrefix, session.id, session.tokenHash, profile,
      now, c.sessionTtl, c.maxSessions, this.gcMargin, ...session.rooms))
    return ok === 1
  }

  async authenticate (tokenHash: string, now: number): Promise<SessionInfo | null> {
    this.tick(now)
    const c = this.cfg()
    const r = await this.run(() => this.client.lpcAuth(this.keyPrefix, tokenHash, now, c.sessionTtl, this.gcMargin))
    if (r === null) return null
    return { id: r[0], profile: parseProfile(r[1]), lastSeen: Number(r[2]), rooms: r[3] }
  }

  async endSession (sessionId: string): Promise<EndedSession | null> {
    const r = await this.run(() => this.client.lpcEnd(this.keyPrefix, sessionId))
    return r === null ? null : toEnded(r)
  }

  async join (sessionId: string, room: string): Promise<'joined' | 'already' | 'too-many' | 'no-session'> {
    const r = await this.run(() => this.client.lpcJoin(this.keyPrefix, sessionId, room, this.cfg().maxRoomsPerSession))
    return r as 'joined' | 'already' | 'too-many' | 'no-session'
  }

  async leave (sessionId: string, room: string): Promise<boolean> {
    return (await this.run(() => this.client.lpcLeave(this.keyPrefix, sessionId, room))) === 1
  }

  async members (room?: string): Promise<Member[]> {
    const rows = await this.run(() => this.client.lpcMembers(this.keyPrefix, room ?? '', this.clock))
    return rows.map(([id, prof, ls]) => ({ id, profile: parseProfile(prof), lastSeen: Number(ls) }))
  }

  async hasSession (sessionId: string): Promise<boolean> {
    return (await this.run(() => this.client.lpcHas(this.keyPrefix, sessionId, this.clock))) === 1
  }

  async publish (message: OutgoingMessage, now: number): Promise<number> {
    this.tick(now)
    const c = this.cfg()
    const t = message.target
    const target = t.kind === 'room' ? t.room : t.kind === 'session' ? t.id : ''
    return await this.run(() => this.client.lpcPublish(this.keyPrefix, message.id, message.json, now, c.messageTtl,
      c.maxMailboxMessages, c.messageTtl + this.gcMargin, t.kind, target, message.ts))
  }

  async read (sessionId: string, cursor: number | null, limit: number, now: number): Promise<ReadResult | 'bad-cursor' | null> {
    this.tick(now)
    const r = await this.run(() => this.client.lpcRead(this.keyPrefix, sessionId, cursor ?? '', limit, now))
    if (r === null) return null
    if (r === -1) return 'bad-cursor'
    return { cursor: r[0], missed: r[1], pollSeq: r[2], messages: r[3] }
  }

  async beginPoll (sessionId: string, holdMs: number, now: number): Promise<number | null> {
    this.tick(now)
    const c = this.cfg()
    return await this.run(() => this.client.lpcBeginPoll(this.keyPrefix, sessionId, holdMs, now, c.sessionTtl, this.gcMargin))
  }

  async endPoll (sessionId: string, seq: number, now: number): Promise<void> {
    this.tick(now)
    const c = this.cfg()
    await this.run(() => this.client.lpcEndPoll(this.keyPrefix, sessionId, seq, now, c.sessionTtl, this.gcMargin))
  }

  async sweep (now: number): Promise<EndedSession[]> {
    this.tick(now)
    const ended: EndedSession[] = []
    for (;;) {
      const batch = await this.run(() => this.client.lpcSweep(this.keyPrefix, now, this.sweepBatch))
      for (const r of batch) ended.push(toEnded(r))
      if (batch.length < this.sweepBatch) return ended
    }
  }

  async stats (): Promise<StoreStats> {
    const r = await this.run(() => this.client.lpcStats(this.keyPrefix))
    return { sessions: r[0], queued: Number(r[1] ?? 0), delivered: Number(r[2] ?? 0), dropped: Number(r[3] ?? 0) }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.client.off('close', this.onClose)
    this.client.off('ready', this.onReady)
    const sub = this.subscriber
    this.subscriber = null
    if (sub !== null) {
      sub.off('close', this.onClose)
      sub.off('ready', this.onReady)
      sub.off('message', this.onMessage)
      if (sub.status === 'ready') {
        // QUIT answers before the socket closes; wait for 'end' (bounded) so nothing outlives close().
        const ended = new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000)
          timer.unref()
          sub.once('end', () => { clearTimeout(timer); resolve() })
        })
        await sub.quit().catch(() => { sub.disconnect() })
        await ended
      } else if (sub.status !== 'end') {
        sub.disconnect()
      }
    }
  }

  /* ---------------------------------------------------------------------------------------- */

  private tick (now: number): void {
    if (now > this.clock) this.clock = now
  }

  private cfg (): StoreConfig {
    if (this.config === null) throw new Error('RedisStore: init() was not called')
    return this.config
  }

  /**
   * Runs one command, failing at once when Redis is not reachable: never let a request wait in
   * ioredis's offline queue, and fail the commands in flight when the connection drops.
   */
  private run<T> (command: () => Promise<T>): Promise<T> {
    if (this.down || this.closed || this.client.status !== 'ready' || this.subscriber?.status !== 'ready') {
      return Promise.reject(new StoreUnavailableError())
    }
    return new Promise<T>((resolve, reject) => {
      this.pending.add(reject)
      command().then((value) => {
        this.pending.delete(reject)
        resolve(value)
      }, (err: unknown) => {
        this.pending.delete(reject)
        reject(err)
      })
    })
  }

  private emit (event: StoreEvent): void {
    const listener = this.listener
    if (listener === null || this.closed) return
    try {
      listener(event)
    } catch {
      // a listener's bug must not break the subscriber connection
    }
  }

  private readonly onMessage = (channel: string, text: string): void => {
    if (channel !== this.channel) return
    let event: StoreEvent
    try {
      event = JSON.parse(text) as StoreEvent
    } catch {
      return
    }
    this.emit(event)
  }

  private readonly onClose = (): void => {
    if (this.closed) return
    const err = new StoreUnavailableError()
    for (const reject of this.pending) reject(err)
    this.pending.clear()
    if (!this.down) {
      this.down = true
      this.emit({ type: 'unavailable' })
    }
  }

  private readonly onReady = (): void => {
    const sub = this.subscriber
    if (!this.down || this.closed || sub === null) return
    if (this.client.status !== 'ready' || sub.status !== 'ready') return
    // ioredis resubscribes on reconnect; a PING answered after it proves the subscription is back.
    sub.ping().then(() => {
      if (this.client.status === 'ready' && sub.status === 'ready') this.down = false
    }, () => {})
  }
}
