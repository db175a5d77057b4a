/**
 * Users of the in-memory store v2: the sessions of each user (found without a scan) and the
 * user's inbox log (`u:<user>`), deleted with the user's last session.
 */
import { Log, type LogSpace } from './log.js'
import type { Session } from './sessions.js'

export interface User {
  readonly log: Log
  readonly sessions: Set<Session>
}

export class Users {
  readonly #users = new Map<string, User>()

  constructor (readonly space: LogSpace) {}

  get (name: string): User | undefined {
    return this.#users.get(name)
  }

  /** The user's sessions that pass `live`. */
  live (name: string, live: (s: Session) => boolean): Session[] {
    const out: Session[] = []
    for (const s of this.#users.get(name)?.sessions ?? []) if (live(s)) out.push(s)
    return out
  }

  /** `s` (created now) joins its user: its cursor in the user's log starts after its current end. */
  add (s: Session, name: string): void {
    let user = this.#users.get(name)
    if (user === undefined) {
      user = { log: new Log('u:' + name, false), sessions: new Set() }
      this.#users.set(name, user)
    }
    s.userCursor = { log: user.log, until: Infinity, ack: user.log.last, dlv: user.log.last }
    user.sessions.add(s)
  }

  remove (s: Session): void {
    s.userCursor = null
    if (s.user === null) return
    const user = this.#users.get(s.user)
    if (user === undefined) return
    user.sessions.delete(s)
    if (user.sessions.size > 0) return
    this.#users.delete(s.user)
    this.space.drop(user.log)
  }
}
