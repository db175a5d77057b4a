/**
 * Rooms of the in-memory store v2: ordered member lists (rosters) with O(log n + page) pages,
 * and room history pages over the room's log.
 */
import type { Page } from '../store.js'
import { Log, type LogSpace } from './log.js'

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

export class Room<M> {
  readonly log: Log
  readonly members = new Roster<M>()

  constructor (readonly name: string) {
    this.log = new Log('r:' + name, true)
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
