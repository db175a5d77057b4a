/**
 * Rooms of the in-memory store v2: ordered member lists (rosters) with O(log n + page) pages,
 * memberships (joining, leaving with unread messages), and history pages over a room's log.
 */
import type { Page } from '../store.js'
import { Log, type LogSpace } from './log.js'
import type { RoomCursor, Session } from './sessions.js'

/**
 * Items in the order they were added, each with an increasing number: an array of numbers and
 * an array of items, where a removed item leaves a tombstone (null) until the arrays are
 * compacted. A page starts with a binary search for the number after `after`.
 */
export class Roster<T> {
  #nos: number[] = []
  #items: Array<T | null> = []
  /** Items that are not tombstones. */
  size = 0

  add (no: number, item: T): void {
    this.#nos.push(no)
    this.#items.push(item)
    this.size++
  }

  remove (no: number): void {
    const i = this.#lowerBound(no)
    if (i >= this.#nos.length || this.#nos[i] !== no || this.#items[i] === null) return
    this.#items[i] = null
    this.size--
    const length = this.#nos.length
    if (this.size === 0) {
      this.#nos = []
      this.#items = []
    } else if (i === length - 1) {
      let end = length - 1
      while (end > 0 && this.#items[end - 1] === null) end--
      this.#nos.length = end
      this.#items.length = end
    } else if (length >= 64 && this.size * 2 < length) {
      this.#compact()
    }
  }

  /**
   * Up to `limit` visible items numbered after `after` (null: from the start), in order, and
   * the cursor of the next page: null when no visible item follows.
   */
  page<R> (after: number | null, limit: number, visible: (item: T) => boolean, map: (item: T) => R): Page<R> {
    const out: R[] = []
    const nos = this.#nos
    const items = this.#items
    let i = after === null ? 0 : this.#lowerBound(after + 1)
    let lastNo = 0
    for (; i < nos.length && out.length < limit; i++) {
      const item = items[i]
      if (item === null || !visible(item)) continue
      out.push(map(item))
      lastNo = nos[i]
    }
    for (; i < nos.length; i++) {
      const item = items[i]
      if (item !== null && visible(item)) return { items: out, next: String(lastNo) }
    }
    return { items: out, next: null }
  }

  * [Symbol.iterator] (): IterableIterator<T> {
    for (const item of this.#items) if (item !== null) yield item
  }

  #lowerBound (no: number): number {
    const nos = this.#nos
    let lo = 0
    let hi = nos.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (nos[mid] < no) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  #compact (): void {
    const nos: number[] = []
    const items: T[] = []
    for (let i = 0; i < this.#nos.length; i++) {
      const item = this.#items[i]
      if (item === null) continue
      nos.push(this.#nos[i])
      items.push(item)
    }
    this.#nos = nos
    this.#items = items
  }
}

export class Room {
  readonly log: Log
  readonly members = new Roster<Session>()

  constructor (readonly name: string) {
    this.log = new Log('r:' + name, true)
  }
}

/** The rooms that have members or history, and the numbers of member lists. */
export class Rooms {
  readonly #rooms = new Map<string, Room>()
  /** Numbers for member lists (rooms and everyone), increasing across the store. */
  #numbers = 0

  constructor (
    readonly space: LogSpace,
    /** maxMailboxMessages: what a former member may keep of a room. */
    readonly keep: number
  ) {}

  nextNumber (): number {
    return ++this.#numbers
  }

  get (name: string): Room | undefined {
    return this.#rooms.get(name)
  }

  /** The room, created when it is not there. */
  room (name: string): Room {
    let room = this.#rooms.get(name)
    if (room === undefined) {
      room = new Room(name)
      this.#rooms.set(name, room)
    }
    return room
  }

  find (s: Session, name: string): RoomCursor | undefined {
    return s.rooms?.find((m) => m.room.name === name)
  }

  /** Adds `s` to the room: its membership starts after the current end of the room's log. */
  join (s: Session, name: string): Room {
    const room = this.room(name)
    const last = room.log.last
    const m: RoomCursor = { log: room.log, until: Infinity, ack: last, dlv: last, room, no: this.nextNumber() }
    room.members.add(m.no, s)
    if (s.rooms === null) s.rooms = [m]
    else s.rooms.push(m)
    return room
  }

  /** Takes `s` out of the room; what it had not read of it stays its own. Null: not a member. */
  leave (s: Session, name: string): Room | null {
    const rooms = s.rooms
    const i = rooms === null ? -1 : rooms.findIndex((m) => m.room.name === name)
    if (rooms === null || i < 0) return null
    const m = rooms[i]
    rooms.splice(i, 1)
    if (rooms.length === 0) s.rooms = null
    const room = m.room
    room.members.remove(m.no)
    m.until = room.log.last
    this.#keepUnread(s, m)
    this.deleteIfUnused(room)
    return room
  }

  /** A room nobody is in and without history to keep is deleted. */
  deleteIfUnused (room: Room): void {
    if (room.members.size > 0 || (this.space.history && room.log.length > 0)) return
    if (this.#rooms.get(room.name) === room) this.#rooms.delete(room.name)
    // Not freed: former members may still hold copies of its entries (freed by age).
    this.space.discard(room.log)
  }

  /** A room's log became empty by trimming (see LogSpace). */
  logEmptied (log: Log): void {
    const room = this.#rooms.get(log.key.slice(2))
    if (room !== undefined && room.log === log && room.members.size === 0) {
      this.#rooms.delete(room.name)
      log.dead = true
    }
  }

  /**
   * A membership ended: the messages accepted while `s` was a member and not yet acknowledged
   * stay its own. They are copied (references, at most maxMailboxMessages: older ones would
   * overflow anyway) so that the room's log never waits for a former member and can still be
   * trimmed by count.
   */
  #keepUnread (s: Session, m: RoomCursor): void {
    const log = m.log
    const until = m.until
    if (m.ack >= until) return
    const start = Math.max(m.ack + 1, log.trimmed + 1, until - this.keep + 1)
    if (start - 1 > m.dlv) {
      const lost = start - 1 - m.dlv
      s.pendingMissed += lost
      this.space.dropped += lost
    }
    if (start > until) return
    const copy = new Log(log.key, false)
    for (let p = start; p <= until; p++) copy.entries.push(log.at(p))
    copy.last = until - start + 1
    const left = { log: copy, until: copy.last, ack: 0, dlv: Math.max(0, m.dlv - start + 1) }
    if (s.leftovers === null) s.leftovers = [left]
    else s.leftovers.push(left)
  }
}

/**
 * The room's history before the message whose page cursor (its `g`) is `before`: the newest
 * `limit` of the entries within the history limits, oldest first; `next` is the cursor of the
 * oldest returned when an older one is kept.
 */
export function historyPage (space: LogSpace, log: Log | undefined, before: number | null, limit: number, now: number): Page<string> {
  if (log === undefined || !space.history || limit <= 0) return { items: [], next: null }
  let p = before === null ? log.last : log.positionOf(before) - 1
  const out: string[] = []
  let oldest = 0
  for (; p > log.trimmed && out.length < limit; p--) {
    const entry = log.at(p)
    // Older entries are older still (acceptance order): the first one out of history ends it.
    if (!space.inHistory(entry, now) || entry.json === null) break
    out.push(entry.json)
    oldest = entry.g
  }
  out.reverse()
  const more = p > log.trimmed && out.length > 0 && space.inHistory(log.at(p), now)
  return { items: out, next: more ? String(oldest) : null }
}
