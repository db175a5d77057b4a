/**
 * The held polls of an instance by log key: `all`, `s:<id>`, `u:<user>`, `r:<room>` for each of
 * the session's rooms (PROTOCOL.md's logs, named by the store's `wake` events). A wake looks
 * one key up: only the polls that read that log read again.
 */

export interface Indexed {
  readonly sessionId: string
  keys: string[]
  rooms: string[]
  user: string | null
}

function sameRooms (a: string[], b: string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export class PollIndex<T extends Indexed> {
  private readonly byKey = new Map<string, Set<T>>()

  /** The polls under a log key (undefined: none). */
  get (key: string): Set<T> | undefined {
    return this.byKey.get(key)
  }

  add (poll: T, rooms: string[], user: string | null): void {
    const keys = ['all', 's:' + poll.sessionId]
    if (user !== null) keys.push('u:' + user)
    for (const room of rooms) keys.push('r:' + room)
    poll.keys = keys
    poll.rooms = rooms
    poll.user = user
    for (const key of keys) {
      let polls = this.byKey.get(key)
      if (polls === undefined) {
        polls = new Set()
        this.byKey.set(key, polls)
      }
      polls.add(poll)
    }
  }

  remove (poll: T): void {
    for (const key of poll.keys) {
      const polls = this.byKey.get(key)
      if (polls === undefined) continue
      polls.delete(poll)
      if (polls.size === 0) this.byKey.delete(key)
    }
    poll.keys = []
  }

  /** The session's rooms or user changed (a join, a leave): index it again. */
  update (poll: T, rooms: string[], user: string | null): void {
    if (poll.user === user && sameRooms(poll.rooms, rooms)) return
    this.remove(poll)
    this.add(poll, rooms, user)
  }
}
