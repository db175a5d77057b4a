/**
 * A session's read in the in-memory store v2: acknowledge, drop what expired or overflowed, and
 * collect what follows the cursor, merging the session's logs by `g` (docs/DESIGN.md, "A read, step by step").
 * It loops over the session's own cursors (at most maxRoomsPerSession + 3, plus leftovers),
 * never over other sessions.
 */
import type { ReadResult } from '../store.js'
import type { LogSpace } from './log.js'
import type { Cursor, Session } from './sessions.js'

/** Reused between reads (a read runs to completion synchronously); cleared after each. */
const cursors: Array<Cursor | null> = []
const heads: number[] = []

function end (m: Cursor): number {
  return m.until < m.log.last ? m.until : m.log.last
}

/**
 * Acknowledges delivered entries up to `c`, then drops the head entries that were trimmed from
 * the log or expired. Returns how many of them had never been delivered (missed).
 */
function settle (space: LogSpace, m: Cursor, c: number, now: number): number {
  const log = m.log
  const last = end(m)
  if (m.ack < m.dlv) {
    if (log.trimmed > m.ack) m.ack = Math.min(log.trimmed, m.dlv)
    while (m.ack < m.dlv && log.at(m.ack + 1).g <= c) m.ack++
  }
  let missed = 0
  if (log.trimmed > m.ack) {
    const t = Math.min(log.trimmed, last)
    if (t > m.dlv) {
      missed += t - m.dlv
      m.dlv = t
    }
    m.ack = t
  }
  while (m.ack < last && space.expired(log.at(m.ack + 1), now)) {
    m.ack++
    if (m.ack > m.dlv) {
      missed++
      m.dlv = m.ack
    }
  }
  return missed
}

/** Index in `cursors` of the one whose next entry (from `heads`) has the lowest `g`, or -1. */
function oldest (n: number): number {
  let best = -1
  let bestG = Infinity
  for (let i = 0; i < n; i++) {
    const m = cursors[i] as Cursor
    const p = heads[i]
    if (p > end(m)) continue
    const g = m.log.at(p).g
    if (g < bestG) {
      bestG = g
      best = i
    }
  }
  return best
}

/** Puts the session's cursors that have entries to look at into `cursors`; returns how many. */
function gather (s: Session): number {
  let n = 0
  if (s.ack < end(s)) cursors[n++] = s
  if (s.inbox !== null && s.inbox.ack < end(s.inbox)) cursors[n++] = s.inbox
  if (s.userCursor !== null && s.userCursor.ack < end(s.userCursor)) cursors[n++] = s.userCursor
  const rooms = s.rooms
  if (rooms !== null) for (let i = 0; i < rooms.length; i++) if (rooms[i].ack < end(rooms[i])) cursors[n++] = rooms[i]
  const left = s.leftovers
  if (left !== null) for (let i = 0; i < left.length; i++) if (left[i].ack < end(left[i])) cursors[n++] = left[i]
  return n
}

/**
 * Reads `s` after cursor `c` (already checked against `issued`): up to `limit` messages and
 * `maxBytes` bytes of them (the first always goes); `limit` 0 only acknowledges.
 */
export function readMailbox (space: LogSpace, s: Session, c: number, limit: number, maxBytes: number, max: number, now: number): ReadResult {
  const n = gather(s)
  let missed = 0
  let pending = 0
  for (let i = 0; i < n; i++) {
    const m = cursors[i] as Cursor
    missed += settle(space, m, c, now)
    pending += end(m) - m.ack
  }
  const messages: string[] = []
  let cursor = c
  if (limit > 0) {
    // Overflow: at most `max` pending, the oldest (in acceptance order) dropped first.
    for (let i = 0; i < n; i++) heads[i] = (cursors[i] as Cursor).ack + 1
    for (; pending > max; pending--) {
      const i = oldest(n)
      const m = cursors[i] as Cursor
      m.ack = heads[i]++
      if (m.ack > m.dlv) {
        missed++
        m.dlv = m.ack
      }
    }
    let bytes = 0
    while (messages.length < limit) {
      const i = oldest(n)
      if (i < 0) break
      const m = cursors[i] as Cursor
      const p = heads[i]
      const entry = m.log.at(p)
      if (entry.json === null) {
        // Freed while it waited behind a younger head (a stale timestamp): it expired.
        if (p > m.dlv) {
          missed++
          m.dlv = p
        }
        heads[i]++
        continue
      }
      if (messages.length > 0 && bytes + entry.bytes > maxBytes) break
      messages.push(entry.json)
      bytes += entry.bytes
      if (p > m.dlv) {
        space.delivered++
        m.dlv = p
      }
      heads[i]++
      cursor = entry.g
    }
    if (cursor > s.issued) s.issued = cursor
  }
  space.dropped += missed
  const inbox = s.inbox
  if (inbox !== null && inbox.ack > inbox.log.trimmed) space.trimTo(inbox.log, inbox.ack)
  if (s.leftovers !== null) {
    const left = s.leftovers.filter((m) => m.ack < m.until)
    s.leftovers = left.length > 0 ? left : null
  }
  for (let i = 0; i < n; i++) cursors[i] = null
  let reported = 0
  if (limit > 0) {
    reported = s.pendingMissed + missed
    s.pendingMissed = 0
  } else {
    s.pendingMissed += missed
  }
  return { messages, cursor, missed: reported, pollSeq: s.pollSeq, rooms: s.roomNames(), user: s.user }
}
