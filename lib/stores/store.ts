/**
 * The store interface (re-exported from types/index.ts).
 *
 * One model for every store ("logs"): each message is appended ONCE to the log of what it was
 * sent to — `all` (everyone), `r:<room>`, `s:<sessionId>` (a session's own inbox), `u:<user>`
 * (a user's inbox) — and a session's mailbox is its position in the logs it belongs to. A
 * publish costs O(1) whatever the audience; a read merges the session's logs by a global
 * sequence number `g` that the store assigns in acceptance order. See docs/DESIGN.md ("The model"
 * and "A read, step by step").
 *
 * Time: the store never reads the clock; every time-dependent decision uses the `now` it is given.
 * Sync or async: every method may return a value or a Promise of it (the memory store answers
 * synchronously on the poll path; callers must accept both: use `await` or a `then` helper).
 * Any rejection/throw means "the store is unavailable" (503) unless a result says otherwise.
 *
 * Cursors: a poll cursor is a `g` (the wire cursor is its decimal form). A new session has
 * delivered nothing, so its first cursor is 0 (what `POST /register` answers). Page cursors
 * (`after` of members, `before` of history, and every `next`) are decimal strings of at most 16
 * digits (`/^(0|[1-9][0-9]{0,15})$/`): opaque to clients, but the core rejects any other string
 * with 400 LONGPOLL_BAD_CURSOR before it calls the store (what a store does with one is unspecified).
 *
 * Rules the types alone do not say:
 * - the two cursor rules above (first cursor 0; the syntax of page cursors, checked by the core);
 * - `ReadOptions.limit` 0 (HEAD /poll) neither delivers nor reports: it acknowledges, and any
 *   `missed` it finds is kept for the next read that returns a result (a HEAD has no body, so
 *   reporting it there would lose it silently); its result has `missed: 0`;
 * - `publish` counts recipients as written there (room members and a user's sessions that
 *   expired count until the sweep removes them; `all` counts live sessions only), and stores
 *   nothing (and wakes nobody) when the count is 0, except a message to an empty room while room
 *   history is on (stored, no wake);
 * - a session's own inbox (`s:<id>`) is freed as its one reader acknowledges it; shared logs are
 *   freed by age (messageTtl, history.maxAge) and count; `stats().queued` counts log entries
 *   (each message once) and `stats().dropped` counts a loss when a read (or a leave) finds it.
 *
 * One point of the semantics that the layout makes easy to get wrong: a membership that ended
 * (leave) keeps every message accepted while the session was a member, however many messages
 * the room gets afterwards. Trimming the room's log by count must not take them from a former
 * member (the memory store copies the unread part, at most maxMailboxMessages references, when
 * the session leaves). The contract case "leave with unread room messages" checks it.
 */

export type Awaitable<T> = T | Promise<T>

/** What a message was sent to; each message is appended to exactly one log. */
export type LogTarget =
  | { kind: 'all' }
  | { kind: 'room', room: string }
  | { kind: 'session', id: string }
  | { kind: 'user', user: string }

/** A message ready to be stored: stamped and serialized once by the delivery core. */
export interface OutgoingMessage {
  id: string
  ts: number
  /** `JSON.stringify` of the wire Message; stored once, in one log. */
  json: string
  target: LogTarget
}

/** A fixed-window rate limit to count in the same store call (per session, or per key). */
export interface RateCheck {
  /** Bucket name: 'messages' | 'joins' | 'pages' (per session) or 'register' (per key). */
  bucket: string
  max: number
  /** Window length, ms. The window starts at the first counted call. */
  window: number
  /** How many to count (default 1; rooms at registration count as many joins). */
  cost?: number
}

export interface SessionInfo {
  id: string
  profile: Record<string, unknown> | null
  /** The application's identity (from `authenticate`); private, never on the wire. */
  user: string | null
  /** The application's private context (from `authenticate`), JSON-serializable; null when none. */
  context: unknown
  rooms: string[]
  lastSeen: number
}

export interface NewSession {
  id: string
  /** SHA-256 (hex) of the bearer token; the token never reaches the store. */
  tokenHash: string
  profile: Record<string, unknown> | null
  user: string | null
  context: unknown
  /** Deduplicated and validated, at most maxRoomsPerSession (server-assigned + asked for). */
  rooms: string[]
}

export type CreateResult =
  | { ok: true, /** members of each room after joining, same order as `rooms` */ sizes: number[] }
  | { ok: false, reason: 'full' | 'user-full' }
  | { ok: false, reason: 'limited', retryMs: number }

export type AuthResult =
  | { ok: true, session: SessionInfo }
  | { ok: false, reason: 'unknown' }
  /** The rate limit refused; nothing was counted. */
  | { ok: false, reason: 'limited', retryMs: number }

/** Options of a read. */
export interface ReadOptions {
  /**
   * Most messages to return (maxMessagesPerPoll). 0: acknowledge only (HEAD /poll): nothing is
   * delivered, `missed` is 0 and what was found missed is kept for the next read; never held.
   */
  limit: number
  /** Most bytes of message JSON to return (maxPollBytes); a single larger message goes alone. */
  maxBytes: number
}

export interface ReadResult {
  /** Serialized messages after the cursor, in acceptance order. */
  messages: string[]
  /** The cursor to answer with: `g` of the last message returned, or the request's cursor. */
  cursor: number
  /** Messages dropped undelivered (expired or overflowed) since the previous read that reported them. */
  missed: number
  /** The session's current poll sequence; a held poll with a lower one is superseded. */
  pollSeq: number
  /** The session's rooms now (the core indexes held polls by room). */
  rooms: string[]
  user: string | null
}

/** `poll`: authenticate + read + (when there is nothing to answer and holdMs > 0) begin a hold. */
export type PollResult =
  | { ok: true, session: SessionInfo, read: ReadResult, /** 0: not held (answer now); else the hold's poll sequence */ seq: number }
  | { ok: false, reason: 'unknown' | 'bad-cursor' }

export interface Member {
  id: string
  profile: Record<string, unknown> | null
  lastSeen: number
}

export interface Page<T> {
  items: T[]
  /** Opaque cursor for the next page; null when this is the last. */
  next: string | null
}

export interface EndedSession {
  id: string
  profile: Record<string, unknown> | null
  user: string | null
  rooms: string[]
  /** Members left in each room after removal, same order as `rooms` (for presenceLimit). */
  sizes: number[]
}

export type JoinResult =
  | { result: 'joined', size: number, /** when asked: messages accepted before the join */ history?: Page<string> }
  | { result: 'already', size: number, history?: Page<string> }
  | { result: 'too-many' | 'no-session' }

/**
 * Events a store delivers to the delivery core of every instance sharing it.
 * - wake: the log got a message (or, for `s:<id>`, the session's memberships changed). No recipient lists.
 * - poll: a hold with this sequence began for the session; held polls with a lower one get 409.
 * - ended: the session was ended or expired; its held poll gets 401.
 * - unavailable: the store lost its backend; held polls get 503.
 */
export type StoreEvent =
  | { type: 'wake', log: string }
  | { type: 'poll', sessionId: string, seq: number }
  | { type: 'ended', sessionId: string }
  | { type: 'unavailable' }

export type StoreListener = (event: StoreEvent) => void

export interface StoreConfig {
  messageTtl: number
  sessionTtl: number
  maxMailboxMessages: number
  maxSessions: number
  maxRoomsPerSession: number
  /** 0: no cap. */
  maxSessionsPerUser: number
  /** Room history: kept per room log beyond what mailboxes need; null: off. */
  history: { maxMessages: number, maxAge: number } | null
}

export interface StoreStats {
  sessions: number
  /** Messages the store keeps (each once, in its log). */
  queued: number
  /** Messages handed to a poll response for the first time (per recipient). */
  delivered: number
  /** Messages dropped before they were ever delivered (per recipient: the sum of `missed`). */
  dropped: number
}

export interface MailboxStore {
  init (config: StoreConfig, listener: StoreListener): Promise<void>

  /** Creates the session, joins its rooms (memberships start after the current end of each log). */
  createSession (session: NewSession, now: number, rate?: RateCheck & { key: string }): Awaitable<CreateResult>

  /** Token → live session; refreshes lastSeen/expiry. `rate` is counted only when ok. */
  authenticate (tokenHash: string, now: number, rate?: RateCheck): Awaitable<AuthResult>

  /** Gives back one unit of a rate bucket counted in the current window (a refused send). */
  refund (sessionId: string, bucket: string, now: number): Awaitable<void>

  /** GET /poll: one call (one Redis round trip): authenticate, read, and hold when nothing to answer. */
  poll (tokenHash: string, cursor: number | null, holdMs: number, options: ReadOptions, now: number): Awaitable<PollResult>

  /**
   * Reads again (after a wake-up): acknowledges up to `cursor`, returns what follows. When `seq`
   * is given (the held poll's) and the result is to be answered (messages or missed > 0), the
   * hold ends in the same call (as `endPoll(seq)` would). Null: no such session. 'bad-cursor'.
   */
  read (sessionId: string, cursor: number | null, options: ReadOptions, now: number, seq?: number): Awaitable<ReadResult | 'bad-cursor' | null>

  /** The hold with sequence `seq` ended (answered, timed out, aborted): idle time starts now. */
  endPoll (sessionId: string, seq: number, now: number): Awaitable<void>

  /** Public view of one live session (for `toUser`: its user). Null when none. */
  lookup (sessionId: string, now: number): Awaitable<{ id: string, user: string | null } | null>

  endSession (sessionId: string): Awaitable<EndedSession | null>
  /** Ends every session of the user. */
  endUser (user: string): Awaitable<EndedSession[]>
  /** The user's live sessions (found without scanning). */
  userSessions (user: string, now: number): Awaitable<Member[]>

  join (sessionId: string, room: string, now: number, history?: number): Awaitable<JoinResult>
  leave (sessionId: string, room: string, now: number): Awaitable<{ left: boolean, size: number }>

  /** Live members of a room (or every live session when room is null), in join order. */
  members (room: string | null, after: string | null, limit: number, now: number): Awaitable<Page<Member>>

  /** The room's kept messages before `before` (a page cursor), newest `limit`, returned oldest first. */
  history (room: string, before: string | null, limit: number, now: number): Awaitable<Page<string>>

  /**
   * Appends the message to its log (O(1), whatever the audience) and emits one wake for the
   * log. Returns the number of recipients: live sessions (all), room members, 1/0 (session),
   * the user's sessions (user); room members and a user's sessions that expired are counted
   * until the sweep removes them (counting them out would loop over recipients). A message to
   * a session or user that does not exist is not stored (0), nor one to everyone when no session
   * is live. A message to an empty room is stored when room history is on (and wakes nobody),
   * else dropped.
   */
  publish (message: OutgoingMessage, now: number): Awaitable<number>

  /**
   * Removes at most `limit` sessions whose idle time exceeded sessionTtl (each exactly once
   * across instances), emits `ended` for each, and frees expired messages. The core calls it
   * again (after yielding to I/O) while it returns `limit` sessions.
   */
  sweep (now: number, limit: number): Awaitable<EndedSession[]>

  stats (): Awaitable<StoreStats>
  close (): Promise<void>
}
