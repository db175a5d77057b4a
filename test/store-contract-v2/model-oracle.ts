/**
 * The reference model of the model-based contract test: what the store must do, written the
 * simplest way. Each session has a v1 mailbox (a queue of its own messages: appended on publish,
 * the oldest dropped on overflow, expired ones dropped from the head, acknowledged up to the
 * cursor): logs must behave exactly like these per-recipient mailboxes. Rooms keep their members
 * in join order and the history of their messages; users their sessions.
 *
 * Cursors are the store's (opaque): the model learns which message each cursor value stands for
 * when the store returns it, and checks that values are consistent and ordered.
 */
import { AssertionError } from 'node:assert'
import type { StoreConfig } from '../../lib/stores/store.js'

export function fail (message: string): never {
  throw new AssertionError({ message })
}

export function check (ok: boolean, message: string): void {
  if (!ok) fail(message)
}

export interface MMessage {
  /** Acceptance order (1, 2, ...): what the store's cursors must follow. */
  idx: number
  ts: number
  data: number
  bytes: number
}

export class MSession {
  state: 'present' | 'ended' | 'swept' = 'present'
  rooms = new Set<string>()
  holding = false
  pollSeq = 0
  /** Poll sequences of its holds, oldest first (for stale endPoll calls). */
  seqs: number[] = []
  /** Its mailbox: messages neither acknowledged nor dropped, oldest first. */
  box: MMessage[] = []
  /** idx of the last message ever returned to it (0: none). */
  issued = 0
  /** Missed, not yet reported. */
  missed = 0
  missedTotal = 0
  /** Cursor value -> idx of the message it stands for; 0 -> 0. */
  readonly cursorIdx = new Map<number, number>([[0, 0]])
  /** The cursor the client sends next, and the highest value returned. */
  clientCursor = 0
  issuedCursor = 0

  constructor (
    readonly id: string,
    readonly tokenHash: string,
    readonly user: string | null,
    public lastSeen: number
  ) {}
}

export class Model {
  readonly sessions: MSession[] = []
  /** Members of each room, in join order. */
  readonly rooms = new Map<string, MSession[]>()
  /** Each room's messages, in acceptance order (trimmed to history.maxMessages). */
  readonly history = new Map<string, MMessage[]>()
  now: number
  idx = 0
  delivered = 0
  /** Drops counted when they happen (eagerly); the store may count them later (lazily). */
  dropped = 0

  constructor (readonly config: StoreConfig, now: number) {
    this.now = now
  }

  live (s: MSession): boolean {
    return s.state === 'present' && (s.holding || s.lastSeen + this.config.sessionTtl > this.now)
  }

  present (): MSession[] {
    return this.sessions.filter((s) => s.state === 'present')
  }

  members (room: string): MSession[] {
    return (this.rooms.get(room) ?? []).filter((s) => s.state === 'present')
  }

  userSessions (user: string): MSession[] {
    return this.present().filter((s) => s.user === user)
  }

  #drop (s: MSession): void {
    const gone = s.box.shift() as MMessage
    if (gone.idx > s.issued) {
      s.missed++
      this.dropped++
    }
  }

  expire (s: MSession): void {
    while (s.box.length > 0 && s.box[0].ts + this.config.messageTtl <= this.now) this.#drop(s)
  }

  /** Undelivered messages past messageTtl still in mailboxes: the store may have counted them dropped. */
  staleUndelivered (): number {
    let n = 0
    for (const s of this.present()) {
      for (const m of s.box) if (m.ts + this.config.messageTtl <= this.now && m.idx > s.issued) n++
    }
    return n
  }

  deliver (s: MSession, m: MMessage): void {
    this.expire(s)
    while (s.box.length >= this.config.maxMailboxMessages) this.#drop(s)
    s.box.push(m)
  }

  newMessage (data: number, bytes: number): MMessage {
    return { idx: ++this.idx, ts: this.now, data, bytes }
  }

  addHistory (room: string, m: MMessage): void {
    const list = this.history.get(room) ?? []
    list.push(m)
    const max = this.config.history?.maxMessages ?? 0
    while (list.length > max) list.shift()
    this.history.set(room, list)
  }

  /** The room's history now, oldest first. */
  historyNow (room: string): MMessage[] {
    const h = this.config.history
    if (h === null) return []
    return (this.history.get(room) ?? []).filter((m) => m.ts + h.maxAge > this.now)
  }

  join (s: MSession, room: string): void {
    s.rooms.add(room)
    const list = this.rooms.get(room) ?? []
    list.push(s)
    this.rooms.set(room, list)
  }

  leave (s: MSession, room: string): void {
    s.rooms.delete(room)
    this.rooms.set(room, (this.rooms.get(room) ?? []).filter((x) => x !== s))
  }

  /** The session is gone: its pending losses count now, it leaves its rooms. */
  remove (s: MSession, state: 'ended' | 'swept'): void {
    this.expire(s)
    s.state = state
    s.holding = false
    for (const room of [...s.rooms]) this.rooms.set(room, (this.rooms.get(room) ?? []).filter((x) => x !== s))
  }

  /** The idx a cursor value acknowledges up to; undefined for a value the store never returned. */
  ackIdx (s: MSession, cursor: number | null): number | undefined {
    return cursor === null ? s.issued : s.cursorIdx.get(cursor)
  }

  /**
   * A read of `s` with `cursor` (a value the store returned, or null): what the store must
   * answer, as data, the idx of the last message (to learn its cursor) and missed.
   */
  read (s: MSession, cursor: number | null, limit: number, maxBytes: number): { data: number[], lastIdx: number, missed: number } {
    const ack = this.ackIdx(s, cursor) as number
    // Acknowledged messages had been delivered: they leave without being missed.
    s.box = s.box.filter((m) => m.idx > ack)
    this.expire(s)
    if (limit === 0) return { data: [], lastIdx: 0, missed: 0 }
    const out: MMessage[] = []
    let bytes = 0
    for (const m of s.box) {
      if (out.length >= limit || (out.length > 0 && bytes + m.bytes > maxBytes)) break
      out.push(m)
      bytes += m.bytes
    }
    for (const m of out) if (m.idx > s.issued) this.delivered++
    const lastIdx = out.length > 0 ? out[out.length - 1].idx : 0
    if (lastIdx > s.issued) s.issued = lastIdx
    const missed = s.missed
    s.missed = 0
    s.missedTotal += missed
    return { data: out.map((m) => m.data), lastIdx, missed }
  }

  /** Learns (or checks) the cursor value the store returned for message `idx` of `s`. */
  learnCursor (s: MSession, idx: number, value: number, where: string): void {
    check(Number.isSafeInteger(value) && value >= 0, `${where}: cursor ${value} is not a non-negative integer`)
    const known = [...s.cursorIdx.entries()].find(([, i]) => i === idx)
    if (known !== undefined) {
      check(known[0] === value, `${where}: message #${idx} came with cursor ${value}, before with ${known[0]}`)
      return
    }
    for (const [v, i] of s.cursorIdx) {
      check((i < idx && v < value) || (i > idx && v > value),
        `${where}: cursor ${value} of message #${idx} is out of order with cursor ${v} of message #${i}`)
    }
    s.cursorIdx.set(value, idx)
    if (value > s.issuedCursor) s.issuedCursor = value
  }
}
