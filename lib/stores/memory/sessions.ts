/**
 * Sessions of the in-memory store v2: a session's positions in its logs (cursors), its rate
 * windows, and the idle list that orders sessions for expiry.
 */
import type { RateCheck } from '../store.js'
import { Deque, type Log } from './log.js'
import type { Room } from './rooms.js'

/**
 * A session's position in one log: entries at positions (ack, min(last, until)] are its own.
 * `ack`: everything up to it is acknowledged or dropped; `dlv`: everything up to it was
 * delivered or counted missed (ack <= dlv).
 */
export interface Cursor {
  log: Log
  /** The log's `last` when the membership ended; Infinity while a member. */
  until: number
  ack: number
  dlv: number
}

export interface RoomCursor extends Cursor {
  readonly room: Room
  /** Its number in the room's member list. */
  readonly no: number
}

/** A fixed window of a rate limit. */
export interface RateWindow {
  readonly bucket: string
  count: number
  start: number
  window: number
}

/** Ms to wait before `rate` may be counted in window `w` (absent: none yet); 0: allowed now. */
export function rateRetry (w: RateWindow | undefined, rate: RateCheck, now: number): number {
  const cost = rate.cost ?? 1
  if (w === undefined || now >= w.start + w.window) return cost > rate.max ? Math.max(1, rate.window) : 0
  return w.count + cost > rate.max ? Math.max(1, w.start + w.window - now) : 0
}

/** Counts `rate` in `w`, starting a new window when the last one is over. */
export function rateAdd (w: RateWindow, rate: RateCheck, now: number): void {
  if (now >= w.start + w.window) {
    w.count = 0
    w.start = now
    w.window = rate.window
  }
  w.count += rate.cost ?? 1
}

interface KeyWindow extends RateWindow {
  readonly key: string
}

/** Rate windows per key (registrations), freed in the order they started once they are over. */
export class KeyRates {
  readonly #windows = new Map<string, KeyWindow>()
  readonly #order = new Deque<KeyWindow>()

  retry (rate: RateCheck & { key: string }, now: number): number {
    return rateRetry(this.#windows.get(rate.bucket + '\n' + rate.key), rate, now)
  }

  count (rate: RateCheck & { key: string }, now: number): void {
    const key = rate.bucket + '\n' + rate.key
    let w = this.#windows.get(key)
    if (w === undefined || now >= w.start + w.window) {
      w = { key, bucket: rate.bucket, count: 0, start: now, window: rate.window }
      this.#windows.set(key, w)
      this.#order.push(w)
    }
    rateAdd(w, rate, now)
  }

  /** O(windows over). */
  free (now: number): void {
    for (let w = this.#order.peek(); w !== undefined && now >= w.start + w.window; w = this.#order.peek()) {
      this.#order.shift()
      if (this.#windows.get(w.key) === w) this.#windows.delete(w.key)
    }
  }
}

/**
 * The session is also its own cursor in the `all` log (plain fields, no object): the idle
 * session costs one object, its two strings and its map entries. Its inbox cursor exists once
 * a message was sent to it; its room cursors once it joined a room.
 */
export class Session implements Cursor {
  until = Infinity
  ack: number
  dlv: number
  inbox: Cursor | null = null
  userCursor: Cursor | null = null
  rooms: RoomCursor[] | null = null
  /** Room memberships that ended with messages still unread: private copies (see the store). */
  leftovers: Cursor[] | null = null
  /** Highest `g` ever returned to it. */
  issued = 0
  /** Missed found outside a read (on leave, or by an acknowledge-only read), not yet reported. */
  pendingMissed = 0
  pollSeq = 0
  /** A poll is held: out of the idle list, it cannot expire. */
  holding = false
  rates: RateWindow[] | null = null
  /** The idle list, oldest touch first. */
  prev: Session | null = null
  next: Session | null = null
  /** Counted in the idle list's expired prefix. */
  counted = false

  constructor (
    readonly id: string,
    readonly tokenHash: string,
    readonly profile: Record<string, unknown> | null,
    readonly user: string | null,
    readonly context: unknown,
    public log: Log,
    public lastSeen: number,
    /** Its number in the list of all sessions (creation order). */
    readonly no: number
  ) {
    this.ack = log.last
    this.dlv = log.last
  }

  roomNames (): string[] {
    const rooms = this.rooms
    if (rooms === null) return []
    const names = new Array<string>(rooms.length)
    for (let i = 0; i < rooms.length; i++) names[i] = rooms[i].room.name
    return names
  }

  rateWindow (bucket: string): RateWindow {
    if (this.rates === null) this.rates = []
    for (const w of this.rates) if (w.bucket === bucket) return w
    const w: RateWindow = { bucket, count: 0, start: -Infinity, window: 0 }
    this.rates.push(w)
    return w
  }
}

/**
 * Sessions without a held poll, in last-touch order (which is lastSeen order: sessionTtl is
 * constant), as an intrusive doubly linked list. The sweep takes expired ones from the head.
 * It also counts its expired prefix, so that the number of live sessions is known in O(1)
 * amortized (a touched session is live, so it never re-enters the prefix).
 */
export class IdleList {
  head: Session | null = null
  tail: Session | null = null
  /** The first session not counted as expired. */
  #boundary: Session | null = null
  expired = 0

  constructor (readonly ttl: number) {}

  append (s: Session): void {
    s.prev = this.tail
    s.next = null
    if (this.tail === null) this.head = s
    else this.tail.next = s
    this.tail = s
    if (this.#boundary === null) this.#boundary = s
  }

  unlink (s: Session): void {
    if (s.counted) {
      s.counted = false
      this.expired--
    }
    if (this.#boundary === s) this.#boundary = s.next
    if (s.prev === null) this.head = s.next
    else s.prev.next = s.next
    if (s.next === null) this.tail = s.prev
    else s.next.prev = s.prev
    s.prev = null
    s.next = null
  }

  /** Counts the sessions that expired by `now` and are still listed. */
  countExpired (now: number): number {
    let b = this.#boundary
    while (b !== null && b.lastSeen + this.ttl <= now) {
      b.counted = true
      this.expired++
      b = b.next
    }
    this.#boundary = b
    return this.expired
  }
}
