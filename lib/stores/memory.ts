/**
 * The in-memory mailbox store: the default store, for a single server instance.
 *
 * Layout (the hot-path rules of docs/DESIGN.md):
 * - Every published message is stored once, as one `{ id, ts, json }` object; each recipient's
 *   mailbox holds a reference to it. A broadcast to N sessions allocates nothing per recipient
 *   besides one array slot.
 * - A mailbox numbers its messages 1, 2, 3, ... contiguously, so it is a deque (array + head
 *   index) where the item at `items[head + i]` has sequence `headSeq + i`. No per-item envelope.
 * - Session expiry needs no timer and no scan: idle sessions live in a Map kept in last-touch
 *   order (every touch deletes and re-inserts), which is also `lastSeen` order because
 *   `sessionTtl` is constant. `sweep(now)` walks from the oldest and stops at the first live one.
 *   A session with a held poll is taken out of that Map, so it cannot expire while held.
 * - Messages expire lazily: expired items are dropped from the head of a mailbox when the mailbox
 *   is read or appended to (message order is acceptance order, so the oldest are at the head).
 *
 * The store never reads the clock: every time-dependent decision uses the `now` it is given.
 */
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

/** One published message, shared by every mailbox it was delivered to. */
interface StoredMessage {
  readonly id: string
  readonly ts: number
  readonly json: string
}

interface Mailbox {
  /** Queue storage; slots before `head` are released (undefined). */
  items: Array<StoredMessage | undefined>
  head: number
  /** Sequence number of `items[head]` (or of the next message when the mailbox is empty). */
  headSeq: number
  /** Highest sequence ever returned by `read` ("delivered"). */
  issuedSeq: number
  /** Messages dropped undelivered since the last read that reported them. */
  pendingMissed: number
}

interface Session {
  readonly id: string
  readonly tokenHash: string
  readonly profile: Record<string, unknown> | null
  readonly rooms: Set<string>
  lastSeen: number
  pollSeq: number
  /** A poll is held: the session is out of the idle map and cannot expire. */
  holding: boolean
  readonly mailbox: Mailbox
}

/** Compact a mailbox's array once this many released slots pile up before `head`. */
const COMPACT_MIN = 256

const DEFAULT_CONFIG: StoreConfig = {
  messageTtl: 60_000,
  sessionTtl: 300_000,
  maxMailboxMessages: 1000,
  maxSessions: 100_000,
  maxRoomsPerSession: 100
}

function noop (): void {}

export class MemoryStore implements MailboxStore {
  #config: StoreConfig = DEFAULT_CONFIG
  #listener: StoreListener = noop
  readonly #sessions = new Map<string, Session>()
  readonly #byToken = new Map<string, Session>()
  /** Sessions without a held poll, oldest touch first. */
  readonly #idle = new Map<string, Session>()
  readonly #rooms = new Map<string, Set<Session>>()
  /** Latest `now` any call has passed: lets `members` (which gets no `now`) hide expired sessions. */
  #clock = -Infinity
  #queued = 0
  #delivered = 0
  #dropped = 0

  async init (config: StoreConfig, listener: StoreListener): Promise<void> {
    this.#config = { ...config }
    this.#listener = listener
  }

  async createSession (session: NewSession, now: number): Promise<boolean> {
    this.#tick(now)
    if (this.#sessions.size >= this.#config.maxSessions) return false
    const s: Session = {
      id: session.id,
      tokenHash: session.tokenHash,
      profile: session.profile,
      rooms: new Set(),
      lastSeen: now,
      pollSeq: 0,
      holding: false,
      mailbox: { items: [], head: 0, headSeq: 1, issuedSeq: 0, pendingMissed: 0 }
    }
    this.#sessions.set(s.id, s)
    this.#byToken.set(s.tokenHash, s)
    this.#idle.set(s.id, s)
    for (const room of session.rooms) this.#addToRoom(s, room)
    return true
  }

  async authenticate (tokenHash: string, now: number): Promise<SessionInfo | null> {
    this.#tick(now)
    const s = this.#byToken.get(tokenHash)
    // An expired session stays in place until `sweep` reports it (the core announces it then).
    if (s === undefined || this.#expired(s, now)) return null
    s.lastSeen = now
    if (!s.holding) {
      this.#idle.delete(s.id)
      this.#idle.set(s.id, s)
    }
    return { id: s.id, profile: s.profile, rooms: [...s.rooms], lastSeen: now }
  }

  async endSession (sessionId: string): Promise<EndedSession | null> {
    const s = this.#sessions.get(sessionId)
    if (s === undefined) return null
    const ended = this.#remove(s)
    this.#emit({ type: 'ended', sessionId: s.id })
    return ended
  }

  async join (sessionId: string, room: string): Promise<'joined' | 'already' | 'too-many' | 'no-session'> {
    const s = this.#sessions.get(sessionId)
    if (s === undefined) return 'no-session'
    if (s.rooms.has(room)) return 'already'
    if (s.rooms.size >= this.#config.maxRoomsPerSession) return 'too-many'
    this.#addToRoom(s, room)
    return 'joined'
  }

  async leave (sessionId: string, room: string): Promise<boolean> {
    const s = this.#sessions.get(sessionId)
    if (s === undefined || !s.rooms.delete(room)) return false
    this.#removeFromRoom(s, room)
    return true
  }

  async members (room?: string): Promise<Member[]> {
    const source = room === undefined ? this.#sessions.values() : this.#rooms.get(room)?.values()
    const out: Member[] = []
    if (source === undefined) return out
    for (const s of source) {
      if (!this.#expired(s, this.#clock)) out.push({ id: s.id, profile: s.profile, lastSeen: s.lastSeen })
    }
    return out
  }

  async publish (message: OutgoingMessage, now: number): Promise<number> {
    this.#tick(now)
    const stored: StoredMessage = { id: message.id, ts: message.ts, json: message.json }
    const target = message.target
    let count = 0
    if (target.kind === 'all') {
      for (const s of this.#sessions.values()) {
        if (this.#expired(s, now)) continue
        this.#append(s.mailbox, stored, now)
        count++
      }
      if (count > 0) this.#emit({ type: 'wake', sessions: null })
      return count
    }
    const ids: string[] = []
    if (target.kind === 'room') {
      const members = this.#rooms.get(target.room)
      if (members !== undefined) {
        for (const s of members) {
          if (this.#expired(s, now)) continue
          this.#append(s.mailbox, stored, now)
          ids.push(s.id)
        }
      }
    } else {
      const s = this.#sessions.get(target.id)
      if (s !== undefined && !this.#expired(s, now)) {
        this.#append(s.mailbox, stored, now)
        ids.push(s.id)
      }
    }
    if (ids.length > 0) this.#emit({ type: 'wake', sessions: ids })
    return ids.length
  }

  async read (sessionId: string, cursor: number | null, limit: number, now: number): Promise<ReadResult | 'bad-cursor' | null> {
    this.#tick(now)
    const s = this.#sessions.get(sessionId)
    if (s === undefined) return null
    const mb = s.mailbox
    const after = cursor ?? mb.issuedSeq
    if (after > mb.issuedSeq) return 'bad-cursor'

    // Acknowledge: everything up to the cursor was delivered, so nothing here is "missed".
    while (mb.head < mb.items.length && mb.headSeq <= after) this.#shift(mb)
    this.#expire(mb, now)

    const messages: string[] = []
    let last = after
    // The first message after the cursor (the head when the cursor is at or below headSeq - 1).
    const start = mb.head + Math.max(0, after + 1 - mb.headSeq)
    const end = Math.min(mb.items.length, start + Math.max(0, limit))
    for (let i = start; i < end; i++) {
      messages.push((mb.items[i] as StoredMessage).json)
    }
    if (end > start) {
      last = mb.headSeq + (end - 1 - mb.head)
      if (last > mb.issuedSeq) {
        // Returned for the first time: those after both the old issuedSeq and the first returned.
        const firstSeq = mb.headSeq + (start - mb.head)
        this.#delivered += last - Math.max(mb.issuedSeq, firstSeq - 1)
        mb.issuedSeq = last
      }
    }
    const missed = mb.pendingMissed
    mb.pendingMissed = 0
    this.#compact(mb)
    return { messages, cursor: last, missed, pollSeq: s.pollSeq }
  }

  async beginPoll (sessionId: string, holdMs: number, now: number): Promise<number | null> {
    this.#tick(now)
    const s = this.#sessions.get(sessionId)
    if (s === undefined || this.#expired(s, now)) return null
    // The core answers (and ends) every held poll of this process, so `holdMs` needs no timer here.
    s.holding = true
    this.#idle.delete(s.id)
    const seq = ++s.pollSeq
    this.#emit({ type: 'poll', sessionId: s.id, seq })
    return seq
  }

  async endPoll (sessionId: string, seq: number, now: number): Promise<void> {
    this.#tick(now)
    const s = this.#sessions.get(sessionId)
    // An older poll ending must not cut the hold of a newer one.
    if (s === undefined || seq !== s.pollSeq) return
    s.holding = false
    if (now > s.lastSeen) s.lastSeen = now
    this.#idle.delete(s.id)
    this.#idle.set(s.id, s)
  }

  async sweep (now: number): Promise<EndedSession[]> {
    this.#tick(now)
    const ended: EndedSession[] = []
    const ttl = this.#config.sessionTtl
    for (const s of this.#idle.values()) {
      if (s.lastSeen + ttl > now) break
      ended.push(this.#remove(s))
    }
    for (const e of ended) this.#emit({ type: 'ended', sessionId: e.id })
    return ended
  }

  async stats (): Promise<StoreStats> {
    return {
      sessions: this.#sessions.size,
      queued: this.#queued,
      delivered: this.#delivered,
      dropped: this.#dropped
    }
  }

  async close (): Promise<void> {
    this.#sessions.clear()
    this.#byToken.clear()
    this.#idle.clear()
    this.#rooms.clear()
    this.#queued = 0
    this.#listener = noop
  }

  /* -------------------------------------------------------------------------------------- */

  #tick (now: number): void {
    if (now > this.#clock) this.#clock = now
  }

  #emit (event: StoreEvent): void {
    this.#listener(event)
  }

  #expired (s: Session, now: number): boolean {
    return !s.holding && s.lastSeen + this.#config.sessionTtl <= now
  }

  #addToRoom (s: Session, room: string): void {
    s.rooms.add(room)
    let members = this.#rooms.get(room)
    if (members === undefined) {
      members = new Set()
      this.#rooms.set(room, members)
    }
    members.add(s)
  }

  /** Takes `s` out of the room's member set (the caller updates `s.rooms`). */
  #removeFromRoom (s: Session, room: string): void {
    const members = this.#rooms.get(room)
    if (members === undefined) return
    members.delete(s)
    if (members.size === 0) this.#rooms.delete(room)
  }

  /** Removes the session from every structure and frees its mailbox. Emits nothing. */
  #remove (s: Session): EndedSession {
    this.#sessions.delete(s.id)
    this.#byToken.delete(s.tokenHash)
    this.#idle.delete(s.id)
    const rooms = [...s.rooms]
    for (const room of rooms) this.#removeFromRoom(s, room)
    s.rooms.clear()
    const mb = s.mailbox
    this.#queued -= mb.items.length - mb.head
    mb.items = []
    mb.head = 0
    return { id: s.id, profile: s.profile, rooms }
  }

  #append (mb: Mailbox, stored: StoredMessage, now: number): void {
    this.#expire(mb, now)
    const max = this.#config.maxMailboxMessages
    while (mb.items.length - mb.head >= max && mb.head < mb.items.length) this.#drop(mb)
    mb.items.push(stored)
    this.#queued++
    this.#compact(mb)
  }

  /** Drops expired messages from the head of the mailbox. */
  #expire (mb: Mailbox, now: number): void {
    const ttl = this.#config.messageTtl
    while (mb.head < mb.items.length && (mb.items[mb.head] as StoredMessage).ts + ttl <= now) this.#drop(mb)
  }

  /** Drops the oldest message, counting it as missed when it was never delivered. */
  #drop (mb: Mailbox): void {
    if (mb.headSeq > mb.issuedSeq) {
      mb.pendingMissed++
      this.#dropped++
    }
    this.#shift(mb)
  }

  /** Releases the head slot. */
  #shift (mb: Mailbox): void {
    mb.items[mb.head] = undefined
    mb.head++
    mb.headSeq++
    this.#queued--
  }

  #compact (mb: Mailbox): void {
    if (mb.head === 0) return
    if (mb.head === mb.items.length) {
      mb.items.length = 0
      mb.head = 0
    } else if (mb.head >= COMPACT_MIN && mb.head * 2 >= mb.items.length) {
      mb.items = mb.items.slice(mb.head)
      mb.head = 0
    }
  }
}
