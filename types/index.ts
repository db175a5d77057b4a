/**
 * Public types of fastify-long-poll-chat: the wire shapes (from lib/wire.ts), the plugin options, the
 * `app.longPoll` decorator, and the mailbox store interface that every store implements.
 *
 * This file only declares types; it is compiled with the library so that consumers get them
 * from `fastify-long-poll-chat` (and the `declare module 'fastify'` augmentation with them).
 */
import type { FastifyRequest } from 'fastify'
import type { Member } from '../lib/wire.js'

/** A JSON value as carried in `data`. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/**
 * The wire shapes, defined once (as TypeBox schemas) in lib/wire.ts: `Message` (a message as it
 * appears on the wire, PROTOCOL.md "Message"), `Member` (what `members()` returns for each
 * session), the request bodies and replies of each route, the error reply and its codes.
 */
export type {
  ErrorCode, ErrorReply, Member, Message, MessageBody, MessageReply, MessageType, MembersReply,
  PollQuery, PollReply, Profile, RegisterBody, RegisterReply, RoomParams
} from '../lib/wire.js'

/* ------------------------------------------------------------------------------------------ */
/* The mailbox store interface                                                                */
/* ------------------------------------------------------------------------------------------ */

/**
 * Where a published message goes. `all`: every live session. `room`: the room's members at the
 * time of publishing. `session`: that one session.
 */
export type PublishTarget =
  | { kind: 'all' }
  | { kind: 'room', room: string }
  | { kind: 'session', id: string }

/** A message ready to be stored: stamped and serialized once by the delivery core. */
export interface OutgoingMessage {
  id: string
  ts: number
  /** `JSON.stringify` of the wire `Message`; stored once, referenced from every mailbox. */
  json: string
  target: PublishTarget
}

/** A live session as the store returns it after authentication. */
export interface SessionInfo {
  id: string
  profile: Record<string, unknown> | null
  rooms: string[]
  lastSeen: number
}

/** What the store needs to know when a session is created. */
export interface NewSession {
  id: string
  /** SHA-256 (hex) of the bearer token; the token itself never reaches the store. */
  tokenHash: string
  profile: Record<string, unknown> | null
  /** Already deduplicated and validated, at most `maxRoomsPerSession`. */
  rooms: string[]
}

/** The answer of `read()`. */
export interface ReadResult {
  /** Serialized messages after the cursor, oldest first (at most `limit`). */
  messages: string[]
  /** Sequence number of the last message returned, or the request's cursor when none. */
  cursor: number
  /** Messages dropped undelivered (expired or overflowed) since the previous read that reported them. */
  missed: number
  /** The session's current poll sequence (see `beginPoll`); a held poll with a lower one is superseded. */
  pollSeq: number
}

/** A session that the store removed (ended or expired), with what the core needs to announce it. */
export interface EndedSession {
  id: string
  profile: Record<string, unknown> | null
  rooms: string[]
}

/**
 * Events a store delivers to the delivery core of every instance that shares it.
 * - `wake`: these sessions got mail (`sessions: null` means every session).
 * - `poll`: a poll with this sequence number began for the session; held polls of that session
 *   with a lower sequence must be answered with 409.
 * - `ended`: the session was ended or expired; its held polls must be answered with 401.
 * - `unavailable`: the store lost its backend; held polls must be answered with 503.
 */
export type StoreEvent =
  | { type: 'wake', sessions: string[] | null }
  | { type: 'poll', sessionId: string, seq: number }
  | { type: 'ended', sessionId: string }
  | { type: 'unavailable' }

export type StoreListener = (event: StoreEvent) => void

/** Settings the plugin hands to its store when it starts. */
export interface StoreConfig {
  messageTtl: number
  sessionTtl: number
  maxMailboxMessages: number
  maxSessions: number
  maxRoomsPerSession: number
}

export interface StoreStats {
  /** Live sessions. */
  sessions: number
  /** Messages waiting in mailboxes (delivered-but-unacknowledged included). */
  queued: number
  /** Messages handed to a poll response for the first time. */
  delivered: number
  /** Messages dropped before they were ever delivered (expired or overflowed). */
  dropped: number
}

/**
 * The mailbox store: every piece of state goes through it. All methods are async; nothing relies
 * on object identity between calls, so a store shared by several server instances (Redis)
 * implements it unchanged. Any rejection means "the store is unavailable" (503) unless stated.
 *
 * Sequence numbers: each mailbox numbers its messages 1, 2, 3, ... in the order they were
 * appended; a cursor is such a number (0 = before the first message).
 */
export interface MailboxStore {
  /** Called once by the plugin before any other method; `listener` receives the store's events. */
  init (config: StoreConfig, listener: StoreListener): Promise<void>

  /** Creates the session and joins its rooms. Returns false when `maxSessions` is reached. */
  createSession (session: NewSession, now: number): Promise<boolean>

  /**
   * Finds the live session whose token hashes to `tokenHash` and refreshes its `lastSeen`
   * (and its expiry). Null for unknown or expired tokens.
   */
  authenticate (tokenHash: string, now: number): Promise<SessionInfo | null>

  /** Ends the session at once (frees its mailbox, leaves its rooms). Null when it did not exist. Emits `ended`. */
  endSession (sessionId: string): Promise<EndedSession | null>

  /**
   * Adds the session to the room. `joined`: it was added now (exactly once across instances);
   * `already`: it was a member; `too-many`: it is in `maxRoomsPerSession` rooms already;
   * `no-session`: the session is gone.
   */
  join (sessionId: string, room: string): Promise<'joined' | 'already' | 'too-many' | 'no-session'>

  /** Removes the session from the room; true only when it was a member (exactly once across instances). */
  leave (sessionId: string, room: string): Promise<boolean>

  /** Live members of the room, or every live session when `room` is undefined. */
  members (room?: string): Promise<Member[]>

  /**
   * Stores the message once and appends it to every recipient's mailbox (dropping the oldest on
   * overflow, counted as missed when undelivered), then emits `wake` for the recipients.
   * Returns the number of recipients (0 for an unknown session or an empty room).
   */
  publish (message: OutgoingMessage, now: number): Promise<number>

  /**
   * Acknowledges every message up to `cursor` (null: the position after the last delivered
   * message), drops expired ones, and returns up to `limit` messages after the cursor.
   * 'bad-cursor' when `cursor` is ahead of anything delivered to this session; null when the
   * session does not exist.
   */
  read (sessionId: string, cursor: number | null, limit: number, now: number): Promise<ReadResult | 'bad-cursor' | null>

  /**
   * A poll is about to be held for up to `holdMs`: the session must not expire while it is held
   * (its idle time counts from `endPoll`). Returns the session's new poll sequence number and
   * emits `poll` with it. Null when the session does not exist.
   */
  beginPoll (sessionId: string, holdMs: number, now: number): Promise<number | null>

  /** The poll with sequence `seq` was answered or aborted: the session's idle time starts now. */
  endPoll (sessionId: string, seq: number, now: number): Promise<void>

  /** Removes sessions whose idle time exceeded `sessionTtl` (each exactly once across instances) and emits `ended` for each. */
  sweep (now: number): Promise<EndedSession[]>

  stats (): Promise<StoreStats>

  /** Releases timers and connections the store created itself (never the user's own client). */
  close (): Promise<void>
}

/* ------------------------------------------------------------------------------------------ */
/* Plugin options and decorator                                                               */
/* ------------------------------------------------------------------------------------------ */

/**
 * What `authenticate` may return: falsy refuses registration (401); `true` accepts;
 * an object accepts and, when it has `profile`, that profile replaces the client's.
 */
export type AuthenticateResult = boolean | null | undefined | { profile?: Record<string, unknown> | null }

/** The client's message as the `onMessage` hook sees it. */
export interface IncomingMessage {
  from: string
  /** The sender's profile. */
  profile: Record<string, unknown> | null
  room: string | null
  to: string | null
  data: unknown
}

/**
 * What `onMessage` may return: `undefined` or `true` stores the message as it is; `false`
 * refuses it (400 `LONGPOLL_BAD_MESSAGE`); `{ data }` replaces its data. Throwing an error with
 * a 4xx `statusCode` answers with that error.
 */
export type OnMessageResult = undefined | boolean | { data: unknown }

export interface SessionEndInfo extends EndedSession {
  reason: 'expired' | 'ended'
}

export interface RateLimitOptions {
  /** Accepted messages per window. */
  max: number
  /** Window length in milliseconds. */
  timeWindow: number
}

export interface LongPollChatOptions {
  /** Route prefix, for example `/chat`. */
  prefix?: string
  /** Longest hold of a poll in ms (25 000). */
  pollTimeout?: number
  /** How long an unacknowledged message waits in a mailbox, ms (60 000). */
  messageTtl?: number
  /** Idle time before a session expires, ms (300 000). */
  sessionTtl?: number
  /** Mailbox length; the oldest are dropped beyond it (1000). */
  maxMailboxMessages?: number
  /** UTF-8 bytes of `JSON.stringify(data)` (16 384). */
  maxMessageBytes?: number
  /** UTF-8 bytes of `JSON.stringify(profile)` (1024). */
  maxProfileBytes?: number
  /** Live sessions (100 000). */
  maxSessions?: number
  /** Rooms per session (100). */
  maxRoomsPerSession?: number
  /** Most messages in one poll response; the rest follow on the next poll (500). */
  maxMessagesPerPoll?: number
  /** Per-session limit on `POST /messages` (`{ max: 20, timeWindow: 1000 }`); false turns it off. */
  rateLimit?: RateLimitOptions | false
  /** How often expired sessions are swept, ms (1000). */
  sweepInterval?: number
  /** The mailbox store (in-memory by default). */
  store?: MailboxStore
  /** Gate for `POST /register`. */
  authenticate?: (request: FastifyRequest) => AuthenticateResult | Promise<AuthenticateResult>
  /** Validate, transform or refuse a client's message before it is stored. */
  onMessage?: (message: IncomingMessage, request: FastifyRequest) => OnMessageResult | Promise<OnMessageResult>
  /** Told once (across instances) when a session ends: expired or `DELETE /session`. */
  onSessionEnd?: (session: SessionEndInfo) => void | Promise<void>
}

export interface PublishResult {
  id: string
  ts: number
}

export interface BroadcastResult extends PublishResult {
  /** Mailboxes the message went to (0 for an empty room). */
  recipients: number
}

export interface LongPollStats extends StoreStats {
  /** Polls held by this instance right now. */
  heldPolls: number
}

/** `app.longPoll` */
export interface LongPollDecorator {
  /** To every session, or to a room's members. `from` is null. */
  broadcast (data: unknown, options?: { room?: string }): Promise<BroadcastResult>
  /** To one session; rejects with code `LONGPOLL_NO_SUCH_SESSION` for an unknown id. */
  send (sessionId: string, data: unknown): Promise<PublishResult>
  /** Live members of a room, or every live session. */
  members (room?: string): Promise<Member[]>
  stats (): Promise<LongPollStats>
  /** Ends a session as `DELETE /session` would; false when it did not exist. */
  endSession (sessionId: string): Promise<boolean>
}

declare module 'fastify' {
  interface FastifyInstance {
    longPoll: LongPollDecorator
  }
}
