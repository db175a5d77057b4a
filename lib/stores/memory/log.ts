/**
 * Logs of the in-memory store v2: each message is appended once, to one log (`all`, a room's, a
 * session's inbox, a user's), and freed by count and age without a timer per message.
 *
 * Positions: a log that has ever received `n` entries has `last = n`; `trimmed` entries were
 * removed from its head, so the entry at position `p` is `at(p)` for `trimmed < p <= last`.
 * Every entry is also queued once in a FIFO in acceptance (`g`) order, which the sweep pops as
 * entries pass `messageTtl`: freeing expired messages costs O(expired), with no scan of logs.
 */
import type { StoreConfig } from '../store.js'

/** One stored message. */
export interface Entry {
  /** Global sequence, in acceptance order: the poll cursor. */
  readonly g: number
  readonly ts: number
  /** Null once the message is freed: it left its log and nobody can deliver it any more. */
  json: string | null
  /** UTF-8 bytes of `json`. */
  readonly bytes: number
  readonly log: Log
  /** Position in `log`. */
  readonly pos: number
}

/** A queue: an array and a head index, compacted as the head moves on. */
export class Deque<T> {
  items: Array<T | undefined> = []
  head = 0

  get length (): number {
    return this.items.length - this.head
  }

  /** The `i`-th item from the head (0-based). */
  at (i: number): T {
    return this.items[this.head + i] as T
  }

  push (item: T): void {
    this.items.push(item)
  }

  peek (): T | undefined {
    return this.items[this.head]
  }

  shift (): T {
    const item = this.items[this.head] as T
    this.items[this.head++] = undefined
    if (this.head === this.items.length) {
      this.items.length = 0
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }

  clear (): void {
    this.items = []
    this.head = 0
  }
}

export class Log {
  readonly entries = new Deque<Entry>()
  trimmed = 0
  last = 0
  /** Deleted (its session, user or empty room is gone): its entries are freed. */
  dead = false

  constructor (
    /** Its name in wake events: `all`, `r:<room>`, `s:<id>`, `u:<user>`. */
    readonly key: string,
    /** A room's log: it keeps history, and its entries may be referenced by leavers (see rooms.ts). */
    readonly room: boolean
  ) {}

  get length (): number {
    return this.last - this.trimmed
  }

  /** The entry at position `p` (`trimmed < p <= last`). */
  at (p: number): Entry {
    return this.entries.at(p - this.trimmed - 1)
  }

  /** The lowest position `p` whose entry has `g >= g`, or `last + 1` (binary search). */
  positionOf (g: number): number {
    let lo = this.trimmed + 1
    let hi = this.last + 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.at(mid).g < g) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

/**
 * The message side of the store: the global sequence, the `all` log, retention, and the counters
 * of `stats()` that concern messages.
 */
export class LogSpace {
  g = 0
  queued = 0
  delivered = 0
  dropped = 0
  readonly all = new Log('all', false)
  /** Every entry, in `g` order, until it passes messageTtl. */
  readonly #fifo = new Deque<Entry>()
  /** Entries that passed messageTtl but are kept as room history, in the same order. */
  readonly #history = new Deque<Entry>()
  readonly #ttl: number
  readonly #cap: number
  readonly #roomCap: number
  readonly #historyMax: number
  readonly #historyAge: number

  constructor (
    config: StoreConfig,
    /** Told when a room log became empty by trimming (the store deletes a room nobody is in). */
    readonly onRoomLogEmpty: (log: Log) => void
  ) {
    this.#ttl = config.messageTtl
    this.#cap = config.maxMailboxMessages
    const h = config.history
    this.#historyMax = h === null ? 0 : h.maxMessages
    this.#historyAge = h === null ? 0 : h.maxAge
    this.#roomCap = Math.max(this.#cap, this.#historyMax)
  }

  get history (): boolean {
    return this.#historyMax > 0
  }

  /** Appends a message (its JSON read once by the caller) and trims the log's head. */
  append (log: Log, ts: number, json: string, now: number): Entry {
    const entry: Entry = { g: ++this.g, ts, json, bytes: Buffer.byteLength(json, 'utf8'), log, pos: ++log.last }
    log.entries.push(entry)
    this.#fifo.push(entry)
    this.queued++
    this.trim(log, now)
    return entry
  }

  /** Whether the entry is past messageTtl (for mailboxes, even when history still keeps it). */
  expired (entry: Entry, now: number): boolean {
    return entry.ts + this.#ttl <= now
  }

  /** Whether a room log's entry is within the history limits (count and age). */
  inHistory (entry: Entry, now: number): boolean {
    return this.#historyMax > 0 && entry.pos > entry.log.last - this.#historyMax && entry.ts + this.#historyAge > now
  }

  /**
   * Removes head entries nobody needs: beyond the log's count cap, or past messageTtl and not
   * kept as history. Stops at the first entry it keeps (timestamps are in acceptance order, but
   * a stale one only makes the trim stop early).
   */
  trim (log: Log, now: number): void {
    const cap = log.room ? this.#roomCap : this.#cap
    while (log.length > 0) {
      const head = log.at(log.trimmed + 1)
      const live = !this.expired(head, now)
      if (log.length <= cap && (live || (log.room && this.inHistory(head, now)))) break
      this.#shift(log, !(live && log.room))
    }
    if (log.room && log.length === 0) this.onRoomLogEmpty(log)
  }

  /** Removes entries up to position `pos` (a session's inbox, acknowledged by its one reader). */
  trimTo (log: Log, pos: number): void {
    while (log.trimmed < pos && log.length > 0) this.#shift(log, true)
  }

  /** Deletes a log: its entries are freed (none of them can be delivered any more). */
  drop (log: Log): void {
    log.dead = true
    this.queued -= log.length
    while (log.entries.length > 0) log.entries.shift().json = null
    log.trimmed = log.last
  }

  /** Deletes a room's log whose entries former members may still hold: freed once expired. */
  discard (log: Log): void {
    log.dead = true
    this.queued -= log.length
    log.entries.clear()
    log.trimmed = log.last
  }

  /**
   * Frees what passed messageTtl (and history's maxAge): O(entries freed), at most `budget`
   * entries looked at; the rest waits for the next call.
   */
  freeExpired (now: number, budget: number): void {
    let n = budget
    while (n-- > 0) {
      const entry = this.#fifo.peek()
      if (entry === undefined || !this.expired(entry, now)) break
      this.#fifo.shift()
      const log = entry.log
      if (!log.dead && entry.pos > log.trimmed) this.trim(log, now)
      if (log.dead || entry.pos <= log.trimmed) entry.json = null
      else if (log.room && this.history) this.#history.push(entry)
      // else: behind a head kept by a stale timestamp; a later trim of its log frees it.
    }
    while (n-- > 0) {
      const entry = this.#history.peek()
      if (entry === undefined || entry.ts + this.#historyAge > now) break
      this.#history.shift()
      const log = entry.log
      if (!log.dead && entry.pos > log.trimmed) this.trim(log, now)
      if (log.dead || entry.pos <= log.trimmed) entry.json = null
    }
  }

  clear (): void {
    this.#fifo.clear()
    this.#history.clear()
    this.drop(this.all)
    this.queued = 0
  }

  /** Removes the head entry; `free`: nobody can need its JSON any more. */
  #shift (log: Log, free: boolean): void {
    const entry = log.entries.shift()
    log.trimmed++
    this.queued--
    if (free) entry.json = null
  }
}
