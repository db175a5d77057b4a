/**
 * The in-memory store, version 2 (logs): the default store, for a single server instance.
 *
 * - Each message is appended once, to the log of what it was sent to (log.ts); a publish costs
 *   O(1) whatever the audience: no loop over recipients, one wake event naming the log.
 * - A session's mailbox is its cursors in its logs (sessions.ts); a read merges them by `g`
 *   (read.ts). A room membership that ends with unread messages keeps a private copy of them
 *   (at most maxMailboxMessages references), so that the room's log can still be trimmed by count.
 * - No timer per message or session: idle sessions are a list in last-touch order (the sweep
 *   takes at most `limit` from its head); messages are freed by count as logs grow and by age
 *   from a FIFO in acceptance order (O(expired)).
 * - Rooms keep their members in join order with tombstones (rooms.ts): pages in O(log n + page).
 * - Every method answers synchronously (the interface allows values or Promises).
 *
 * The store never reads the clock: every time-dependent decision uses the `now` it is given.
 */
import type {
  AuthResult, CreateResult, EndedSession, JoinResult, MailboxStore, Member, NewSession,
  OutgoingMessage, Page, PollResult, RateCheck, ReadOptions, ReadResult, SessionInfo, StoreConfig,
  StoreEvent, StoreListener, StoreStats
} from '../store.js'
import { Log, LogSpace } from './log.js'
import { readMailbox } from './read.js'
import { Rooms, Roster, historyPage } from './rooms.js'
import { IdleList, KeyRates, Session, rateAdd, rateRetry } from './sessions.js'
import { Users } from './users.js'

const DEFAULT_CONFIG: StoreConfig = {
  messageTtl: 60_000,
  sessionTtl: 300_000,
  maxMailboxMessages: 1000,
  maxSessions: 100_000,
  maxRoomsPerSession: 100,
  maxSessionsPerUser: 0,
  history: null
}

/** Most expired messages one sweep frees; the rest go at the next one. */
const SWEEP_FREE_BUDGET = 100_000

const PAGE_CURSOR = /^(0|[1-9][0-9]{0,15})$/

const UNKNOWN = { ok: false, reason: 'unknown' } as const
const BAD_CURSOR = { ok: false, reason: 'bad-cursor' } as const

function noop (): void {}

function parsePageCursor (cursor: string | null): number | null {
  if (cursor === null) return null
  return PAGE_CURSOR.test(cursor) ? Number(cursor) : NaN
}

function toMember (s: Session): Member {
  return { id: s.id, profile: s.profile, lastSeen: s.lastSeen }
}

export class MemoryStore implements MailboxStore {
  #config: StoreConfig = DEFAULT_CONFIG
  #listener: StoreListener = noop
  #space!: LogSpace
  #idle!: IdleList
  #sessions = new Map<string, Session>()
  #byToken = new Map<string, Session>()
  /** Every session, in creation order (members of "everyone"). */
  #everyone = new Roster<Session>()
  #rooms!: Rooms
  #users!: Users
  /** Register windows per key. */
  #keyRates = new KeyRates()

  constructor () {
    this.#reset(DEFAULT_CONFIG)
  }

  async init (config: StoreConfig, listener: StoreListener): Promise<void> {
    this.#reset({ ...DEFAULT_CONFIG, ...config })
    this.#listener = listener
  }

  createSession (session: NewSession, now: number, rate?: RateCheck & { key: string }): CreateResult {
    if (rate !== undefined) {
      const retryMs = this.#keyRates.retry(rate, now)
      if (retryMs > 0) return { ok: false, reason: 'limited', retryMs }
    }
    const cap = this.#config.maxSessionsPerUser
    if (session.user !== null && cap > 0) {
      if (this.#users.live(session.user, (s) => !this.#expired(s, now)).length >= cap) return { ok: false, reason: 'user-full' }
    }
    if (this.#sessions.size >= this.#config.maxSessions) return { ok: false, reason: 'full' }
    if (rate !== undefined) this.#keyRates.count(rate, now)

    const s = new Session(session.id, session.tokenHash, session.profile, session.user,
      session.context ?? null, this.#space.all, now, this.#rooms.nextNumber())
    this.#sessions.set(s.id, s)
    this.#byToken.set(s.tokenHash, s)
    this.#idle.append(s)
    this.#everyone.add(s.no, s)
    if (s.user !== null) this.#users.add(s, s.user)
    const sizes = session.rooms.map((name) => {
      const room = this.#rooms.find(s, name)?.room ?? this.#rooms.join(s, name)
      return room.members.size
    })
    return { ok: true, sizes }
  }

  authenticate (tokenHash: string, now: number, rate?: RateCheck): AuthResult {
    const s = this.#byToken.get(tokenHash)
    if (s === undefined || this.#expired(s, now)) return UNKNOWN
    // A refused request is an authenticated request all the same: it keeps the session alive.
    this.#touch(s, now)
    if (rate !== undefined) {
      const w = s.rateWindow(rate.bucket)
      const retryMs = rateRetry(w, rate, now)
      if (retryMs > 0) return { ok: false, reason: 'limited', retryMs }
      rateAdd(w, rate, now)
    }
    return { ok: true, session: this.#info(s) }
  }

  refund (sessionId: string, bucket: string, now: number): void {
    const w = this.#sessions.get(sessionId)?.rates?.find((r) => r.bucket === bucket)
    if (w !== undefined && now < w.start + w.window && w.count > 0) w.count--
  }

  poll (tokenHash: string, cursor: number | null, holdMs: number, options: ReadOptions, now: number): PollResult {
    const s = this.#byToken.get(tokenHash)
    if (s === undefined || this.#expired(s, now)) return UNKNOWN
    this.#touch(s, now)
    const read = this.#read(s, cursor, options, now)
    if (read === null) return BAD_CURSOR
    let seq = 0
    if (holdMs > 0 && options.limit > 0 && read.messages.length === 0 && read.missed === 0) {
      if (!s.holding) {
        s.holding = true
        this.#idle.unlink(s)
      }
      seq = ++s.pollSeq
      read.pollSeq = seq
      this.#emit({ type: 'poll', sessionId: s.id, seq })
    }
    return { ok: true, session: this.#info(s), read, seq }
  }

  read (sessionId: string, cursor: number | null, options: ReadOptions, now: number, seq?: number): ReadResult | 'bad-cursor' | null {
    const s = this.#sessions.get(sessionId)
    if (s === undefined) return null
    const read = this.#read(s, cursor, options, now)
    if (read === null) return 'bad-cursor'
    if (seq !== undefined && (read.messages.length > 0 || read.missed > 0)) this.#endHold(s, seq, now)
    return read
  }

  endPoll (sessionId: string, seq: number, now: number): void {
    const s = this.#sessions.get(sessionId)
    if (s !== undefined) this.#endHold(s, seq, now)
  }

  lookup (sessionId: string, now: number): { id: string, user: string | null } | null {
    const s = this.#sessions.get(sessionId)
    return s === undefined || this.#expired(s, now) ? null : { id: s.id, user: s.user }
  }

  endSession (sessionId: string): EndedSession | null {
    const s = this.#sessions.get(sessionId)
    if (s === undefined) return null
    const ended = this.#remove(s)
    this.#emit({ type: 'ended', sessionId: s.id })
    return ended
  }

  endUser (user: string): EndedSession[] {
    const sessions = this.#users.get(user)?.sessions
    if (sessions === undefined) return []
    const ended = [...sessions].map((s) => this.#remove(s))
    for (const e of ended) this.#emit({ type: 'ended', sessionId: e.id })
    return ended
  }

  userSessions (user: string, now: number): Member[] {
    return this.#users.live(user, (s) => !this.#expired(s, now)).map(toMember)
  }

  join (sessionId: string, room: string, now: number, history?: number): JoinResult {
    const s = this.#sessions.get(sessionId)
    if (s === undefined) return { result: 'no-session' }
    const existing = this.#rooms.find(s, room)
    if (existing === undefined && (s.rooms?.length ?? 0) >= this.#config.maxRoomsPerSession) return { result: 'too-many' }
    // Read before joining: the history is what was accepted before the join point.
    const page = history !== undefined && history > 0
      ? historyPage(this.#space, this.#rooms.get(room)?.log, null, history, now)
      : undefined
    let result: JoinResult
    if (existing !== undefined) {
      result = { result: 'already', size: existing.room.members.size }
    } else {
      result = { result: 'joined', size: this.#rooms.join(s, room).members.size }
      this.#emit({ type: 'wake', log: 's:' + s.id })
    }
    if (page !== undefined) result.history = page
    return result
  }

  leave (sessionId: string, room: string, now: number): { left: boolean, size: number } {
    const s = this.#sessions.get(sessionId)
    if (s === undefined) return { left: false, size: 0 }
    const r = this.#rooms.leave(s, room)
    if (r === null) return { left: false, size: this.#rooms.get(room)?.members.size ?? 0 }
    this.#emit({ type: 'wake', log: 's:' + s.id })
    return { left: true, size: r.members.size }
  }

  members (room: string | null, after: string | null, limit: number, now: number): Page<Member> {
    const from = parsePageCursor(after)
    const roster = room === null ? this.#everyone : this.#rooms.get(room)?.members
    if (roster === undefined || Number.isNaN(from)) return { items: [], next: null }
    return roster.page(from, limit, (s) => !this.#expired(s, now), toMember)
  }

  history (room: string, before: string | null, limit: number, now: number): Page<string> {
    const from = parsePageCursor(before)
    if (Number.isNaN(from)) return { items: [], next: null }
    return historyPage(this.#space, this.#rooms.get(room)?.log, from, limit, now)
  }

  publish (message: OutgoingMessage, now: number): number {
    const target = message.target
    const space = this.#space
    let log: Log | undefined
    let recipients = 0
    if (target.kind === 'all') {
      recipients = this.#sessions.size - this.#idle.countExpired(now)
      log = space.all
    } else if (target.kind === 'room') {
      const room = this.#rooms.get(target.room)
      recipients = room?.members.size ?? 0
      log = room?.log
      // A room nobody is in keeps the message only as history, and wakes nobody.
      if (recipients === 0 && space.history) space.append(this.#rooms.room(target.room).log, message.ts, message.json, now)
    } else if (target.kind === 'session') {
      const s = this.#sessions.get(target.id)
      if (s !== undefined && !this.#expired(s, now)) {
        s.inbox ??= { log: new Log('s:' + s.id, false), until: Infinity, ack: 0, dlv: 0 }
        recipients = 1
        log = s.inbox.log
      }
    } else if (target.kind === 'user') {
      const user = this.#users.get(target.user)
      recipients = user?.sessions.size ?? 0
      log = user?.log
    }
    if (recipients <= 0 || log === undefined) return 0
    space.append(log, message.ts, message.json, now)
    this.#emit({ type: 'wake', log: log.key })
    return recipients
  }

  sweep (now: number, limit: number): EndedSession[] {
    const ended: EndedSession[] = []
    const ttl = this.#config.sessionTtl
    for (let s = this.#idle.head; s !== null && ended.length < limit && s.lastSeen + ttl <= now; s = this.#idle.head) {
      ended.push(this.#remove(s))
    }
    for (const e of ended) this.#emit({ type: 'ended', sessionId: e.id })
    this.#space.freeExpired(now, SWEEP_FREE_BUDGET)
    this.#keyRates.free(now)
    return ended
  }

  stats (): StoreStats {
    const space = this.#space
    return { sessions: this.#sessions.size, queued: space.queued, delivered: space.delivered, dropped: space.dropped }
  }

  async close (): Promise<void> {
    this.#listener = noop
    this.#reset(this.#config)
  }

  /* -------------------------------------------------------------------------------------- */

  #reset (config: StoreConfig): void {
    this.#space?.clear()
    this.#config = config
    this.#space = new LogSpace(config, (log) => { this.#rooms.logEmptied(log) })
    this.#rooms = new Rooms(this.#space, config.maxMailboxMessages)
    this.#idle = new IdleList(config.sessionTtl)
    this.#sessions = new Map()
    this.#byToken = new Map()
    this.#everyone = new Roster()
    this.#users = new Users(this.#space)
    this.#keyRates = new KeyRates()
  }

  #emit (event: StoreEvent): void {
    this.#listener(event)
  }

  #expired (s: Session, now: number): boolean {
    return !s.holding && s.lastSeen + this.#config.sessionTtl <= now
  }

  #info (s: Session): SessionInfo {
    return { id: s.id, profile: s.profile, user: s.user, context: s.context, rooms: s.roomNames(), lastSeen: s.lastSeen }
  }

  #touch (s: Session, now: number): void {
    s.lastSeen = now
    if (s.holding) return
    this.#idle.unlink(s)
    this.#idle.append(s)
  }

  #read (s: Session, cursor: number | null, options: ReadOptions, now: number): ReadResult | null {
    const c = cursor ?? s.issued
    if (!(c >= 0 && c <= s.issued)) return null
    return readMailbox(this.#space, s, c, options.limit, options.maxBytes, this.#config.maxMailboxMessages, now)
  }

  /** The hold `seq` ended (answered, timed out, aborted): the session's idle time starts now. */
  #endHold (s: Session, seq: number, now: number): void {
    // An older poll ending must not cut the hold of a newer one.
    if (seq !== s.pollSeq) return
    if (s.holding) {
      s.holding = false
      if (now > s.lastSeen) s.lastSeen = now
      this.#idle.append(s)
    } else if (!this.#expired(s, now)) {
      if (now > s.lastSeen) this.#touch(s, now)
    }
  }

  /** Removes the session from every structure and frees its inbox. Emits nothing. */
  #remove (s: Session): EndedSession {
    this.#sessions.delete(s.id)
    this.#byToken.delete(s.tokenHash)
    if (s.holding) s.holding = false
    else this.#idle.unlink(s)
    this.#everyone.remove(s.no)
    const rooms: string[] = []
    const sizes: number[] = []
    for (const m of s.rooms ?? []) {
      m.room.members.remove(m.no)
      rooms.push(m.room.name)
      sizes.push(m.room.members.size)
      this.#rooms.deleteIfUnused(m.room)
    }
    s.rooms = null
    s.leftovers = null
    if (s.inbox !== null) this.#space.drop(s.inbox.log)
    s.inbox = null
    this.#users.remove(s)
    return { id: s.id, profile: s.profile, user: s.user, rooms, sizes }
  }
}
