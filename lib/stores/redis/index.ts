/**
 * The Redis store (store interface v2, ../store.ts): several server instances share one Redis,
 * with no sticky sessions, and the same semantics as the memory store (docs/DESIGN.md).
 *
 * Each message is appended once, to the log of what it was sent to; a session's mailbox is its
 * position in the logs it belongs to. Every step is one Lua script (registered with
 * `defineCommand`), so it is atomic and costs one round trip: a publish is O(1) whatever the
 * audience (one append, one INCR, a trim of the log's head, one PUBLISH naming the log); a poll
 * is one script (token, read, and the hold when there is nothing to answer), and the read when
 * woken, or the end of the hold, one more. Events (`wake`, `poll`, `ended`) are published from
 * inside the scripts on one channel; every instance has one subscriber connection (see
 * ./connection.ts) and hands every event, its own included, to its delivery core.
 * The scripts: ./message-scripts.ts, ./session-scripts.ts, ./room-scripts.ts; their shared Lua:
 * ./lua-logs.ts, ./lua-sessions.ts, ./lua-read.ts; how they are declared: ./lua.ts.
 *
 * Layout. Every key starts with the key base B = keyPrefix + '{lpc}:' (or keyPrefix itself when
 * it has a hash tag of its own), so all keys are in one hash slot:
 * - `B g`             the global sequence (INCR per message): the poll cursor
 * - `B l:<log>`       sorted set of entries `<ts>|<json>` scored by g; log = `all`, `r:<room>`,
 *                     `s:<id>` (a session's inbox), `u:<user>`, `x:<id>:<n>` (a copy of what a
 *                     session left a room with unread)
 * - `B last`          hash log → how many entries it ever received (positions are counts; an
 *                     inbox's count is field n of its session hash, a copy's its membership's until)
 * - `B joins`         hash `all`/room → join counter (member pages are in join order)
 * - `B lx`            sorted set log → when its head may expire (the sweep trims those logs)
 * - `B mb:all`, `B mb:r:<room>`  sorted sets of member ids scored by join number
 * - `B s:<id>`        hash: tok, prof, user, ctx, ls (lastSeen), ps (poll sequence), hu (hold
 *                     end, 0 when none), is (highest g issued), pm (missed not yet reported),
 *                     n (inbox count), no (creation number), rc/jc/lc (room count, join and
 *                     copy counters), and one field per membership (see ./lua-sessions.ts)
 * - `B sr:<id>`       hash room → '' of the session's rooms, without TTL: a sweep after the
 *                     session hash timed out still takes the session out of its rooms
 * - `B t:<hash>`      token hash → id
 * - `B sessions`      sorted set id → expiry time (the logic's clock is the `now` argument)
 * - `B u:<user>`      set of the user's session ids
 * - `B rl:<bucket>:<id>`, `B rk:register:<key>`  rate windows (hash c, s, w)
 * - `B stats`         hash: queued, delivered, dropped
 * - channel `B events`
 * Key TTLs are garbage-collection backstops only (for a Redis that no instance sweeps any more);
 * expiry itself is decided with `now`. Logs are trimmed by count and age by the scripts that
 * append to them and by the sweep (through `B lx`), not by a timer per message.
 */
import type { Redis } from 'ioredis'
import type {
  AuthResult,
  CreateResult,
  EndedSession,
  JoinResult,
  MailboxStore,
  Member,
  NewSession,
  OutgoingMessage,
  Page,
  PollResult,
  RateCheck,
  ReadOptions,
  ReadResult,
  SessionInfo,
  StoreConfig,
  StoreListener,
  StoreStats
} from '../store.js'
import { RedisConnection } from './connection.js'
import { TAG_SUFFIX, hasHashTag, type Arg, type Script } from './lua.js'
import * as messageScripts from './message-scripts.js'
import * as roomScripts from './room-scripts.js'
import * as sessionScripts from './session-scripts.js'
import type { EndedReply, MemberReply, SessionReply } from './session-scripts.js'

const { createSession, authenticate, refund, lookup, endSession, endUser, userSessions, sweep, stats } = sessionScripts
const { join, leave, members, history } = roomScripts
const { publish, poll, read, endPoll } = messageScripts
/** Every script, for `defineCommand` in init(). */
const SCRIPTS: ReadonlyArray<Script<never, unknown>> = [
  ...Object.values(sessionScripts), ...Object.values(roomScripts), ...Object.values(messageScripts)
]
/** Logs the sweep trims per call at most (those whose head may have expired). */
const SWEEP_LOGS = 200

export interface RedisStoreOptions {
  /** The application's ioredis client. The store never closes it. */
  client: Redis
  /**
   * Prefix of every key and of the events channel ('lpc:'). Instances that share state use the
   * same one. Without a hash tag of its own (`{…}`), the store adds '{lpc}:' after it.
   */
  keyPrefix?: string
  /**
   * Extra lifetime (ms) of Redis key TTLs beyond the logical expiry (30 000): a backstop for a
   * Redis that no instance sweeps any more.
   */
  gcMargin?: number
}

function parseJson (json: string | null | undefined): unknown {
  return json ? JSON.parse(json) as unknown : null
}

function parseProfile (json: string | null | undefined): Record<string, unknown> | null {
  return parseJson(json) as Record<string, unknown> | null
}

function toEnded (r: EndedReply): EndedSession {
  return { id: r[0], profile: parseProfile(r[1]), user: r[2] === '' ? null : r[2], rooms: r[3], sizes: r[4] }
}

function toSession (r: SessionReply): SessionInfo {
  return { id: r[0], profile: parseProfile(r[1]), user: r[2] === '' ? null : r[2], context: parseJson(r[3]), lastSeen: Number(r[4]), rooms: r[5] }
}

function toMember (r: MemberReply): Member {
  return { id: r[0], profile: parseProfile(r[1]), lastSeen: Number(r[2]) }
}

/** A page cursor of ours (decimal, checked by the core) as a number; null for none. */
function pageCursor (c: string | null): number | null {
  return c === null ? null : Number(c)
}

export class RedisStore implements MailboxStore {
  readonly keyPrefix: string
  /** What every key starts with: the prefix and its hash tag. */
  readonly keyBase: string
  private readonly client: Redis
  private readonly connection: RedisConnection
  private readonly gcMargin: number
  private config: StoreConfig | null = null

  constructor (opts: RedisStoreOptions) {
    const { client, keyPrefix = 'lpc:', gcMargin = 30_000 } = opts ?? {}
    if (client == null || typeof client.duplicate !== 'function' || typeof client.defineCommand !== 'function') {
      throw new TypeError('RedisStore: `client` must be an ioredis Redis instance')
    }
    if (typeof keyPrefix !== 'string') throw new TypeError('RedisStore: `keyPrefix` must be a string')
    if (!Number.isInteger(gcMargin) || gcMargin < 0) throw new TypeError('RedisStore: `gcMargin` must be an integer >= 0')
    this.client = client
    this.keyPrefix = keyPrefix
    this.keyBase = hasHashTag(keyPrefix) ? keyPrefix : keyPrefix + TAG_SUFFIX
    this.gcMargin = gcMargin
    // Named so that operators (and tests) can tell it in CLIENT LIST.
    this.connection = new RedisConnection(client, this.keyBase + 'events', 'lpc-subscriber:' + keyPrefix)
  }

  async init (config: StoreConfig, listener: StoreListener): Promise<void> {
    this.config = config
    for (const s of SCRIPTS) this.client.defineCommand(s.command, { numberOfKeys: 1, lua: s.lua })
    await this.connection.open(listener)
  }

  async createSession (session: NewSession, now: number, rate?: RateCheck & { key: string }): Promise<CreateResult> {
    const c = this.cfg()
    const r = await this.call(createSession, {
      id: session.id,
      tokenHash: session.tokenHash,
      profile: JSON.stringify(session.profile),
      user: session.user,
      context: JSON.stringify(session.context ?? null),
      now,
      sessionTtl: c.sessionTtl,
      maxSessions: c.maxSessions,
      maxPerUser: c.maxSessionsPerUser,
      gcMargin: this.gcMargin,
      rateKey: rate?.key ?? null,
      rateBucket: rate?.bucket ?? 'register',
      rateMax: rate?.max ?? 0,
      rateWindow: rate?.window ?? 0,
      rateCost: rate?.cost ?? 1,
      historyMax: c.history?.maxMessages ?? 0,
      rooms: session.rooms
    })
    if (r[0] === 1) return { ok: true, sizes: r[1] }
    if (r[1] === 'limited') return { ok: false, reason: 'limited', retryMs: r[2] }
    return { ok: false, reason: r[1] }
  }

  async authenticate (tokenHash: string, now: number, rate?: RateCheck): Promise<AuthResult> {
    const c = this.cfg()
    const r = await this.call(authenticate, {
      tokenHash,
      now,
      sessionTtl: c.sessionTtl,
      gcMargin: this.gcMargin,
      rateBucket: rate?.bucket ?? null,
      rateMax: rate?.max ?? 0,
      rateWindow: rate?.window ?? 0,
      rateCost: rate?.cost ?? 1
    })
    if (r === 0) return { ok: false, reason: 'unknown' }
    if (r[0] === -1) return { ok: false, reason: 'limited', retryMs: r[1] }
    return { ok: true, session: toSession(r as SessionReply) }
  }

  async refund (sessionId: string, bucket: string, now: number): Promise<void> {
    await this.call(refund, { id: sessionId, bucket, now })
  }

  async poll (tokenHash: string, cursor: number | null, holdMs: number, options: ReadOptions, now: number): Promise<PollResult> {
    const r = await this.call(poll, {
      tokenHash, cursor, holdMs, limit: options.limit, maxBytes: options.maxBytes, now, sessionTtl: this.cfg().sessionTtl, ...this.retention()
    })
    if (r === 0) return { ok: false, reason: 'unknown' }
    if (r === -1) return { ok: false, reason: 'bad-cursor' }
    const [id, prof, user, ctx, ls, rooms, messages, readCursor, missed, pollSeq, seq] = r
    const u = user === '' ? null : user
    return {
      ok: true,
      session: { id, profile: parseProfile(prof), user: u, context: parseJson(ctx), lastSeen: Number(ls), rooms },
      read: { messages, cursor: readCursor, missed, pollSeq, rooms, user: u },
      seq
    }
  }

  async read (sessionId: string, cursor: number | null, options: ReadOptions, now: number, seq?: number): Promise<ReadResult | 'bad-cursor' | null> {
    const r = await this.call(read, {
      id: sessionId, cursor, limit: options.limit, maxBytes: options.maxBytes, now, seq: seq ?? null, sessionTtl: this.cfg().sessionTtl, ...this.retention()
    })
    if (r === 0) return null
    if (r === -1) return 'bad-cursor'
    const [messages, readCursor, missed, pollSeq, rooms, user] = r
    return { messages, cursor: readCursor, missed, pollSeq, rooms, user: user === '' ? null : user }
  }

  async endPoll (sessionId: string, seq: number, now: number): Promise<void> {
    await this.call(endPoll, { id: sessionId, seq, now, sessionTtl: this.cfg().sessionTtl, gcMargin: this.gcMargin })
  }

  async lookup (sessionId: string, now: number): Promise<{ id: string, user: string | null } | null> {
    const r = await this.call(lookup, { id: sessionId, now })
    return r === null ? null : { id: r[0], user: r[1] === '' ? null : r[1] }
  }

  async endSession (sessionId: string): Promise<EndedSession | null> {
    const r = await this.call(endSession, { id: sessionId, historyMax: this.retention().historyMax })
    return r === null ? null : toEnded(r)
  }

  async endUser (user: string): Promise<EndedSession[]> {
    return (await this.call(endUser, { user, historyMax: this.retention().historyMax })).map(toEnded)
  }

  async userSessions (user: string, now: number): Promise<Member[]> {
    return (await this.call(userSessions, { user, now })).map(toMember)
  }

  async join (sessionId: string, room: string, now: number, historyCount?: number): Promise<JoinResult> {
    const h = this.cfg().history
    const [result, size, messages, next] = await this.call(join, {
      id: sessionId,
      room,
      now,
      maxRooms: this.cfg().maxRoomsPerSession,
      history: historyCount ?? 0,
      historyMax: h?.maxMessages ?? 0,
      historyAge: h?.maxAge ?? 0
    })
    if (result === 'too-many' || result === 'no-session') return { result }
    if (historyCount === undefined || historyCount <= 0) return { result, size }
    return { result, size, history: { items: messages, next: next === '' ? null : next } }
  }

  async leave (sessionId: string, room: string, _now?: number): Promise<{ left: boolean, size: number }> {
    const { maxMailbox, messageTtl, historyMax, gcMargin } = this.retention()
    const [left, size] = await this.call(leave, { id: sessionId, room, maxMailbox, messageTtl, historyMax, gcMargin })
    return { left: left === 1, size }
  }

  async members (room: string | null, after: string | null, limit: number, now: number): Promise<Page<Member>> {
    const [rows, next] = await this.call(members, { room, after: pageCursor(after), limit, now })
    return { items: rows.map(toMember), next: next === '' ? null : next }
  }

  async history (room: string, before: string | null, limit: number, now: number): Promise<Page<string>> {
    const h = this.cfg().history
    const [items, next] = await this.call(history, {
      room, before: pageCursor(before), limit, now, historyMax: h?.maxMessages ?? 0, historyAge: h?.maxAge ?? 0
    })
    return { items, next: next === '' ? null : next }
  }

  async publish (message: OutgoingMessage, now: number): Promise<number> {
    const t = message.target
    const target = t.kind === 'room' ? t.room : t.kind === 'session' ? t.id : t.kind === 'user' ? t.user : ''
    return await this.call(publish, { kind: t.kind, target, json: message.json, ts: message.ts, now, ...this.retention() })
  }

  async sweep (now: number, limit: number): Promise<EndedSession[]> {
    return (await this.call(sweep, { now, limit, logs: SWEEP_LOGS, ...this.retention() })).map(toEnded)
  }

  async stats (): Promise<StoreStats> {
    const r = await this.call(stats, {})
    return { sessions: r[0], queued: Number(r[1] ?? 0), delivered: Number(r[2] ?? 0), dropped: Number(r[3] ?? 0) }
  }

  async close (): Promise<void> {
    await this.connection.close()
  }

  /* ---------------------------------------------------------------------------------------- */

  private cfg (): StoreConfig {
    if (this.config === null) throw new Error('RedisStore: init() was not called')
    return this.config
  }

  /** The arguments of the scripts that trim logs. */
  private retention (): { messageTtl: number, maxMailbox: number, historyMax: number, historyAge: number, gcMargin: number } {
    const c = this.cfg()
    return {
      messageTtl: c.messageTtl,
      maxMailbox: c.maxMailboxMessages,
      historyMax: c.history?.maxMessages ?? 0,
      historyAge: c.history?.maxAge ?? 0,
      gcMargin: this.gcMargin
    }
  }

  /** Runs one script, failing at once when Redis is not reachable (see RedisConnection.run). */
  private call<A, R> (script: Script<A, R>, args: A): Promise<R> {
    return this.connection.run(() => this.send(script, args))
  }

  /** Sends one script call: the command `defineCommand` added to the client, with its key and ARGV. */
  private send<A, R> (script: Script<A, R>, args: A): Promise<R> {
    const commands = this.client as unknown as Record<string, (...argv: Arg[]) => Promise<R>>
    return commands[script.command](...script.argv(this.keyBase, args))
  }
}
