/**
 * The Redis mailbox store: several server instances share one Redis, with no sticky sessions.
 *
 * Every step that touches more than one key is one Lua script (registered with `defineCommand`),
 * so it is atomic and costs one round trip: a broadcast to N sessions is one script call.
 * Events (`wake`, `poll`, `ended`) are published from inside those scripts on one channel,
 * `${keyPrefix}events`; every instance has one subscriber connection (made with
 * `client.duplicate()`, see ./connection.ts) and hands every event, its own included, to its
 * delivery core. The scripts are in ./session-scripts.ts and ./message-scripts.ts.
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
import type {
  EndedSession,
  MailboxStore,
  Member,
  NewSession,
  OutgoingMessage,
  ReadResult,
  SessionInfo,
  StoreConfig,
  StoreListener,
  StoreStats
} from '../../../types/index.js'
import { RedisConnection } from './connection.js'
import type { Arg, Script } from './lua.js'
import * as messageScripts from './message-scripts.js'
import * as sessionScripts from './session-scripts.js'
import type { EndedReply } from './session-scripts.js'

const { createSession, authenticate, endSession, join, leave, members, sweep, stats } = sessionScripts
const { publish, read, beginPoll, endPoll } = messageScripts
/** Every script, for `defineCommand` in init(). */
const SCRIPTS: ReadonlyArray<Script<never, unknown>> = [...Object.values(sessionScripts), ...Object.values(messageScripts)]

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

function parseProfile (json: string | null | undefined): Record<string, unknown> | null {
  return json ? JSON.parse(json) as Record<string, unknown> : null
}

function toEnded (reply: EndedReply): EndedSession {
  return { id: reply[0], profile: parseProfile(reply[1]), rooms: reply[2] }
}

export class RedisStore implements MailboxStore {
  readonly keyPrefix: string
  private readonly client: Redis
  private readonly connection: RedisConnection
  private readonly gcMargin: number
  private readonly sweepBatch: number
  private config: StoreConfig | null = null
  /**
   * The latest `now` any call passed (as the memory store keeps it): `members()`, which gets no
   * `now`, leaves out sessions expired by then but not yet swept.
   */
  private clock = -1

  constructor (opts: RedisStoreOptions) {
    const { client, keyPrefix = 'lpc:', gcMargin = 30_000, sweepBatch = 500 } = opts ?? {}
    if (client == null || typeof client.duplicate !== 'function' || typeof client.defineCommand !== 'function') {
      throw new TypeError('RedisStore: `client` must be an ioredis Redis instance')
    }
    if (typeof keyPrefix !== 'string') throw new TypeError('RedisStore: `keyPrefix` must be a string')
    if (!Number.isInteger(gcMargin) || gcMargin < 0) throw new TypeError('RedisStore: `gcMargin` must be an integer >= 0')
    if (!Number.isInteger(sweepBatch) || sweepBatch < 1) throw new TypeError('RedisStore: `sweepBatch` must be an integer >= 1')
    this.client = client
    this.keyPrefix = keyPrefix
    this.gcMargin = gcMargin
    this.sweepBatch = sweepBatch
    // Named so that operators (and tests) can tell it in CLIENT LIST.
    this.connection = new RedisConnection(client, keyPrefix + 'events', 'lpc-subscriber:' + keyPrefix)
  }

  async init (config: StoreConfig, listener: StoreListener): Promise<void> {
    this.config = config
    for (const s of SCRIPTS) this.client.defineCommand(s.command, { numberOfKeys: 0, lua: s.lua })
    await this.connection.open(listener)
  }

  async createSession (session: NewSession, now: number): Promise<boolean> {
    this.tick(now)
    const c = this.cfg()
    const profile = session.profile === null ? '' : JSON.stringify(session.profile)
    const { id, tokenHash, rooms } = session
    const { sessionTtl, maxSessions } = c
    const ok = await this.call(createSession, { id, tokenHash, profile, now, sessionTtl, maxSessions, gcMargin: this.gcMargin, rooms })
    return ok === 1
  }

  async authenticate (tokenHash: string, now: number): Promise<SessionInfo | null> {
    this.tick(now)
    const c = this.cfg()
    const r = await this.call(authenticate, { tokenHash, now, sessionTtl: c.sessionTtl, gcMargin: this.gcMargin })
    if (r === null) return null
    return { id: r[0], profile: parseProfile(r[1]), lastSeen: Number(r[2]), rooms: r[3] }
  }

  async endSession (sessionId: string): Promise<EndedSession | null> {
    const r = await this.call(endSession, { id: sessionId })
    return r === null ? null : toEnded(r)
  }

  async join (sessionId: string, room: string): Promise<'joined' | 'already' | 'too-many' | 'no-session'> {
    return await this.connection.run(() => this.send(join, { id: sessionId, room, maxRooms: this.cfg().maxRoomsPerSession }))
  }

  async leave (sessionId: string, room: string): Promise<boolean> {
    return (await this.call(leave, { id: sessionId, room })) === 1
  }

  async members (room?: string): Promise<Member[]> {
    const rows = await this.call(members, { room: room ?? null, clock: this.clock })
    return rows.map(([id, prof, ls]) => ({ id, profile: parseProfile(prof), lastSeen: Number(ls) }))
  }

  async publish (message: OutgoingMessage, now: number): Promise<number> {
    this.tick(now)
    const c = this.cfg()
    const t = message.target
    return await this.call(publish, {
      messageId: message.id,
      json: message.json,
      now,
      messageTtl: c.messageTtl,
      maxMailbox: c.maxMailboxMessages,
      bodyTtl: c.messageTtl + this.gcMargin,
      kind: t.kind,
      target: t.kind === 'room' ? t.room : t.kind === 'session' ? t.id : '',
      ts: message.ts
    })
  }

  async read (sessionId: string, cursor: number | null, limit: number, now: number): Promise<ReadResult | 'bad-cursor' | null> {
    this.tick(now)
    const r = await this.call(read, { id: sessionId, cursor, limit, now })
    if (r === null) return null
    if (r === -1) return 'bad-cursor'
    return { cursor: r[0], missed: r[1], pollSeq: r[2], messages: r[3] }
  }

  async beginPoll (sessionId: string, holdMs: number, now: number): Promise<number | null> {
    this.tick(now)
    const c = this.cfg()
    return await this.call(beginPoll, { id: sessionId, holdMs, now, sessionTtl: c.sessionTtl, gcMargin: this.gcMargin })
  }

  async endPoll (sessionId: string, seq: number, now: number): Promise<void> {
    this.tick(now)
    const c = this.cfg()
    await this.call(endPoll, { id: sessionId, seq, now, sessionTtl: c.sessionTtl, gcMargin: this.gcMargin })
  }

  async sweep (now: number): Promise<EndedSession[]> {
    this.tick(now)
    const ended: EndedSession[] = []
    for (;;) {
      const batch = await this.call(sweep, { now, batch: this.sweepBatch })
      for (const r of batch) ended.push(toEnded(r))
      if (batch.length < this.sweepBatch) return ended
    }
  }

  async stats (): Promise<StoreStats> {
    const r = await this.call(stats, {})
    return { sessions: r[0], queued: Number(r[1] ?? 0), delivered: Number(r[2] ?? 0), dropped: Number(r[3] ?? 0) }
  }

  async close (): Promise<void> {
    await this.connection.close()
  }

  /* ---------------------------------------------------------------------------------------- */

  private tick (now: number): void {
    if (now > this.clock) this.clock = now
  }

  private cfg (): StoreConfig {
    if (this.config === null) throw new Error('RedisStore: init() was not called')
    return this.config
  }

  /** Runs one script, failing at once when Redis is not reachable (see RedisConnection.run). */
  private call<A, R> (script: Script<A, R>, args: A): Promise<R> {
    return this.connection.run(() => this.send(script, args))
  }

  /** Sends one script call: the command `defineCommand` added to the client, with its ARGV. */
  private send<A, R> (script: Script<A, R>, args: A): Promise<R> {
    const commands = this.client as unknown as Record<string, (...argv: Arg[]) => Promise<R>>
    return commands[script.command](...script.argv(this.keyPrefix, args))
  }
}
