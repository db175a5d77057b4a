/**
 * Keeping the session in the page's storage (the `persist` option), so that a reload resumes it.
 *
 * What is kept, under one key per client (`name`, by default derived from the URL):
 * - the session: id, secret token, cursor, rooms (in the storage the option names);
 * - this page's position: the tab-group sequence number and message count it reached (`shared`
 *   mode) and the ids of the last messages it handed to the application (at most `MAX_IDS`),
 *   always in per-tab storage (sessionStorage when there is one), because each tab of a shared
 *   session has its own.
 *
 * The cursor kept is never ahead of what the application took, and never behind what the server
 * acknowledged: `Progress` tracks which poll responses were taken by every consumer, and the
 * client saves before it acknowledges with its next poll (index.ts). A reload after the save
 * polls from that cursor: what was said meanwhile is still in the mailbox; what was taken but not
 * yet saved comes again and is dropped by the kept ids.
 */
import type { ChatSession } from './types.js'

/** A Web Storage (`sessionStorage`, `localStorage`) or anything with the same three methods. */
export interface ChatStorage {
  getItem: (key: string) => string | null
  setItem: (key: string, value: string) => void
  removeItem: (key: string) => void
}

/** `persist`: `'session'` (sessionStorage, per tab), `'local'` (localStorage, the origin's), a storage, or off. */
export type PersistOption = 'session' | 'local' | ChatStorage | false

/** Ids of recent messages kept per page (the dedupe window across a reload). */
export const MAX_IDS = 256

/** What a page keeps: the session and its position. */
export interface Saved extends ChatSession {
  rooms: string[]
  /** Tab group: sequence number and message count of the last batch taken (0 without `shared`). */
  seq: number
  total: number
  /** Ids of the last messages taken, oldest first. */
  ids: string[]
  /** True while a page runs on it; false once it was hidden (reload, close, freeze). */
  open: boolean
}

interface Position { id: string, seq: number, total: number, ids: string[], open: boolean }

/** The page's storage by name; null when it is missing or throws (private mode, sandboxed frames). */
function webStorage (which: 'sessionStorage' | 'localStorage'): ChatStorage | null {
  try {
    const storage = (globalThis as Record<string, unknown>)[which] as ChatStorage | undefined
    if (storage === undefined || storage === null || typeof storage.getItem !== 'function') return null
    const probe = '__longpoll_probe__'
    storage.setItem(probe, '1')
    storage.removeItem(probe)
    return storage
  } catch {
    return null
  }
}

const isString = (v: unknown): v is string => typeof v === 'string'
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

function read (storage: ChatStorage, key: string): Record<string, unknown> | null {
  try {
    const text = storage.getItem(key)
    if (text === null) return null
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null ? value as Record<string, unknown> : null
  } catch {
    return null
  }
}

function write (storage: ChatStorage, key: string, value: unknown): void {
  try {
    storage.setItem(key, JSON.stringify(value))
  } catch {
    // Quota exceeded or storage disabled: the page just will not resume; nothing else changes.
  }
}

/** The session and position of one client in the page's storage. */
export class SessionStore {
  /**
   * `main` holds the session; `tab` the page's position (the same storage unless `main` is
   * shared by the origin's tabs).
   */
  constructor (private readonly main: ChatStorage, private readonly tab: ChatStorage, readonly key: string) {}

  /**
   * The store for `persist`, or null when it is off or the storage is missing. `'local'` is for
   * shared sessions only (`shared` false: tabs would poll one session against each other), so
   * `perTab` turns it into `'session'`.
   */
  static create (persist: PersistOption | undefined, key: string, perTab: boolean): SessionStore | null {
    if (persist === undefined || persist === false) return null
    if (typeof persist === 'object') return new SessionStore(persist, persist, key)
    const session = webStorage('sessionStorage')
    const main = persist === 'local' && !perTab ? webStorage('localStorage') : session
    if (main === null) return null
    return new SessionStore(main, session ?? main, key)
  }

  /** The kept session, or null when there is none or it does not read as one. */
  load (): Saved | null {
    const s = read(this.main, this.key)
    if (s === null || !isString(s.id) || !isString(s.token) || !(isString(s.cursor) || s.cursor === null)) return null
    const rooms = Array.isArray(s.rooms) ? s.rooms.filter(isString) : []
    const p = this.tab === this.main ? s : read(this.tab, this.key + ':tab')
    const mine = p !== null && p.id === s.id
    const ids = mine && Array.isArray(p.ids) ? p.ids.filter(isString).slice(-MAX_IDS) : []
    return {
      id: s.id,
      token: s.token,
      cursor: s.cursor,
      rooms,
      seq: mine && isCount(p.seq) ? p.seq : 0,
      total: mine && isCount(p.total) ? p.total : 0,
      ids,
      open: mine && p.open === true
    }
  }

  save (saved: Saved): void {
    const position: Position = { id: saved.id, seq: saved.seq, total: saved.total, ids: saved.ids.slice(-MAX_IDS), open: saved.open }
    const session = { id: saved.id, token: saved.token, cursor: saved.cursor, rooms: saved.rooms }
    if (this.tab === this.main) {
      write(this.main, this.key, { ...session, ...position })
    } else {
      write(this.main, this.key, session)
      write(this.tab, this.key + ':tab', position)
    }
  }

  clear (): void {
    for (const [storage, key] of [[this.main, this.key], [this.tab, this.key + ':tab']] as const) {
      try {
        storage.removeItem(key)
      } catch {}
    }
  }
}

/** A saved position: the cursor after a poll response, and the tab group's count after it. */
export interface Mark { cursor: string | null, seq: number, total: number }

/**
 * Which poll responses the application has taken. Every message handed to the inbox is counted
 * (`delivered`); a consumer takes them in order, so when the inbox's backlog (the most messages
 * any consumer has not taken yet) is `b`, all but the last `b` are taken. A mark made after a
 * response is taken once the count taken passes it.
 */
export class Progress {
  private delivered = 0
  private readonly marks: Array<Mark & { end: number }> = []
  private readonly ids: string[]
  private taken: Mark

  constructor (start: Mark, ids: string[]) {
    this.taken = start
    this.ids = ids.slice(-MAX_IDS)
  }

  /** A message was handed to the inbox. */
  deliver (id: string): void {
    this.delivered++
    this.ids.push(id)
    if (this.ids.length > 4 * MAX_IDS) this.ids.splice(0, this.ids.length - 2 * MAX_IDS)
  }

  /** Everything delivered so far belongs to the position `mark`. */
  mark (mark: Mark): void {
    const last = this.marks[this.marks.length - 1]
    if (last !== undefined && last.end === this.delivered) this.marks.pop()
    this.marks.push({ ...mark, end: this.delivered })
  }

  /** The newest position whose messages are all taken, given the inbox's `backlog`. */
  position (backlog: number): Mark {
    const takenCount = this.delivered - backlog
    while (this.marks.length > 0 && (this.marks[0] as { end: number }).end <= takenCount) {
      const { cursor, seq, total } = this.marks.shift() as Mark
      this.taken = { cursor, seq, total }
    }
    return this.taken
  }

  /** True when every mark is taken (the cursor of the last response may be acknowledged). */
  done (backlog: number): boolean {
    this.position(backlog)
    return this.marks.length === 0
  }

  /** Ids of the last messages taken (at most `MAX_IDS`). */
  takenIds (backlog: number): string[] {
    return this.ids.slice(0, Math.max(0, this.ids.length - backlog)).slice(-MAX_IDS)
  }

  /** A new session: its cursors start again (ids stay: they are unique across sessions). */
  reset (mark: Mark): void {
    this.marks.length = 0
    this.taken = mark
  }
}
