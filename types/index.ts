/**
 * Public types of fastify-long-poll-chat: the wire shapes (from lib/wire.ts), the plugin options
 * and hooks, the `app.longPoll` decorator, and the store interface (lib/stores/store.ts).
 *
 * This file only declares types; it is compiled with the library so that consumers get them
 * from `fastify-long-poll-chat` (and the `declare module 'fastify'` augmentation with them).
 */
import type { FastifyRequest } from 'fastify'
import type { Member, Message } from '../lib/wire.js'
import type { MailboxStore, StoreStats } from '../lib/stores/store.js'

/** A JSON value as carried in `data`. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/**
 * The wire shapes, defined once (as TypeBox schemas) in lib/wire.ts: `Message` (a message as it
 * appears on the wire, PROTOCOL.md "Message"), `Member` (what `members()` returns for each
 * session), the request bodies and replies of each route, the error reply and its codes.
 */
export type {
  ErrorCode, ErrorReply, HistoryQuery, HistoryReply, JoinQuery, Member, MembersQuery, Message,
  MessageBody, MessageReply, MessageType, MembersReply, PollQuery, PollReply, Profile,
  RegisterBody, RegisterReply, RoomParams
} from '../lib/wire.js'

/* ------------------------------------------------------------------------------------------ */
/* The store interface                                                                         */
/* ------------------------------------------------------------------------------------------ */

/** The store interface (logs; see docs/DESIGN.md), for those who write a store of their own. */
export type * from '../lib/stores/store.js'

/* ------------------------------------------------------------------------------------------ */
/* Hooks                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/**
 * What `authenticate` may return: falsy refuses the registration (401 `LONGPOLL_UNAUTHORIZED`);
 * `true` accepts it as the client asked; an object accepts it and may set:
 * - `user`: the application's identity of the person (1 to 256 characters); private, never on
 *   the wire. A user's sessions can be addressed together (`toUser`, `sendToUser`, `endUser`).
 * - `profile`: a trusted profile that replaces the client's (`null`: none).
 * - `rooms`: rooms the server assigns, joined without asking `authorize` (valid room names).
 * - `context`: private, JSON-serializable data that later hook calls receive (`session.context`).
 * A result of any other shape is the application's bug: the registration is refused (401) and
 * the problem is logged at `error` level.
 */
export type AuthenticateResult = boolean | null | undefined | {
  user?: string | null
  profile?: Record<string, unknown> | null
  rooms?: string[]
  context?: unknown
}

/** The session as the hooks see it (`context` is what `authenticate` returned, or null). */
export interface HookSession {
  /** Public session id. */
  id: string
  profile: Record<string, unknown> | null
  /** The application's identity from `authenticate`; null for anonymous sessions. */
  user: string | null
  context: unknown
}

/**
 * An action the `authorize` hook is asked about (PROTOCOL.md, "Authorization"); `kind` tells
 * which, so that `switch (action.kind)` narrows it.
 * - `join`: joining `room`, asked for in `POST /register` (`via: 'register'`; the session does not
 *   exist yet: it is created only if every asked room is allowed) or `POST /rooms/:room/join`.
 * - `members` / `history`: reading the room's member list / history.
 * - `sendRoom`, `sendSession` (`to`: the addressed session id), `sendUser` (`to`: the session id
 *   the client addressed, `user`: the recipient's private user, null when that session has none),
 *   `broadcast` (to everyone): `POST /messages`, with the client's `data` (before `onMessage`).
 */
export type AuthorizeAction =
  | { kind: 'join', room: string, via: 'register' | 'route' }
  | { kind: 'members', room: string }
  | { kind: 'history', room: string }
  | { kind: 'sendRoom', room: string, data: unknown }
  | { kind: 'sendSession', to: string, data: unknown }
  | { kind: 'sendUser', to: string, user: string | null, data: unknown }
  | { kind: 'broadcast', data: unknown }

export type AuthorizeKind = AuthorizeAction['kind']

/** The client's message as the `onMessage` hook sees it. */
export interface IncomingMessage {
  /** The sender's session id. */
  from: string
  /** The sender's profile. */
  profile: Record<string, unknown> | null
  /** The sender's user (from `authenticate`), null when anonymous. */
  user: string | null
  /** The sender's context (from `authenticate`), null when none. */
  context: unknown
  room: string | null
  to: string | null
  /** The session id of a message to a person (`toUser`), else null. */
  toUser: string | null
  data: unknown
}

/**
 * What `onMessage` may return: `undefined` or `true` stores the message as it is; `false`
 * refuses it (400 `LONGPOLL_BAD_MESSAGE`); `{ data }` replaces its data. A thrown error with a
 * 4xx `statusCode` and a string `code` is answered as it is; anything else thrown is a 400
 * `LONGPOLL_BAD_MESSAGE` (and a log line), never a 5xx.
 */
export type OnMessageResult = undefined | boolean | { data: unknown }

/** What `onSessionEnd` is told, once per session (once across instances). */
export interface SessionEndInfo {
  id: string
  profile: Record<string, unknown> | null
  user: string | null
  /** The rooms it was in when it ended. */
  rooms: string[]
  reason: 'expired' | 'ended'
}

/* ------------------------------------------------------------------------------------------ */
/* Plugin options                                                                             */
/* ------------------------------------------------------------------------------------------ */

export interface RateLimitOptions {
  /** Requests counted per window. */
  max: number
  /** Window length in milliseconds (a fixed window, starting at the first counted request). */
  timeWindow: number
}

export interface RegisterRateLimitOptions extends RateLimitOptions {
  /**
   * The key registrations are counted under: `request.ip` by default (set Fastify's
   * `trustProxy` behind a proxy). `user` is what `authenticate` returned (null when none).
   * Return null to leave this registration unlimited. A key function that throws or returns
   * something else is logged and `request.ip` is used.
   */
  key?: (request: FastifyRequest, user: string | null) => string | null
}

export interface HistoryOptions {
  /** Messages kept per room. */
  maxMessages: number
  /** Longest a message is kept in a room's history, ms. */
  maxAge: number
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
  /** Live sessions per user (from `authenticate`): 403 `LONGPOLL_TOO_MANY_SESSIONS` beyond it. No cap by default. */
  maxSessionsPerUser?: number
  /** Most messages in one poll response; the rest follow on the next poll (500). */
  maxMessagesPerPoll?: number
  /** Most bytes of messages in one poll response (262 144); a single larger message goes alone. */
  maxPollBytes?: number
  /** Rooms with more members than this get no `join`/`leave` messages (100; 0: never). */
  presenceLimit?: number
  /** Members in one `GET /rooms/:room/members` page (100). */
  membersPageSize?: number
  /** Messages in one history page (50). */
  historyPageSize?: number
  /** Longest time a poll response may take to be written to a client that does not read it, ms (10 000). */
  responseTimeout?: number
  /** Room history: kept per room, bounded in count and age; `false` (default): off. */
  history?: HistoryOptions | false
  /** Accepted `POST /messages` per session (`{ max: 20, timeWindow: 1000 }`); false turns it off. */
  rateLimit?: RateLimitOptions | false
  /** Joins and leaves per session, rooms asked for at registration included (`{ max: 20, timeWindow: 10 000 }`); false: off. */
  joinRateLimit?: RateLimitOptions | false
  /** Member-list and history pages per session (`{ max: 30, timeWindow: 10 000 }`); false: off. */
  pageRateLimit?: RateLimitOptions | false
  /** Registrations per client address (`{ max: 30, timeWindow: 60 000 }`, keyed by `request.ip`); false: off. */
  registerRateLimit?: RegisterRateLimitOptions | false
  /** How often expired sessions and messages are swept, ms (1000). */
  sweepInterval?: number
  /** The mailbox store (in-memory by default): see lib/stores/store.ts. */
  store?: MailboxStore
  /** Who the registering client is (runs once the body is parsed, before it is validated). */
  authenticate?: (request: FastifyRequest) => AuthenticateResult | Promise<AuthenticateResult>
  /**
   * Asked before each action of `AuthorizeAction`, on every path that leads to it; only `true`
   * allows. Anything else, or a throw, refuses it: 403 `LONGPOLL_FORBIDDEN` (a throw is logged).
   */
  authorize?: (session: HookSession, action: AuthorizeAction, request: FastifyRequest) => boolean | Promise<boolean>
  /** Validate, transform or refuse a client's message before it is stored. */
  onMessage?: (message: IncomingMessage, request: FastifyRequest) => OnMessageResult | Promise<OnMessageResult>
  /** Told once (across instances) when a session ends: expired, `DELETE /session`, or ended by the server. */
  onSessionEnd?: (session: SessionEndInfo) => void | Promise<void>
}

/* ------------------------------------------------------------------------------------------ */
/* The app.longPoll decorator                                                                 */
/* ------------------------------------------------------------------------------------------ */

export interface PublishResult {
  id: string
  ts: number
}

export interface BroadcastResult extends PublishResult {
  /** Sessions the message went to (0 for an empty room or a user without live sessions). */
  recipients: number
}

export interface HistoryPage {
  /** Oldest first. */
  messages: Message[]
  /** Pass as `before` to get the page before this one; null when there is nothing older. */
  next: string | null
}

export interface LongPollStats extends StoreStats {
  /** Polls held by this instance right now. */
  heldPolls: number
}

/** `app.longPoll`: what the application itself can do. Messages it sends have `from: null`. */
export interface LongPollDecorator {
  /** To every session, or to a room's members. */
  broadcast (data: unknown, options?: { room?: string }): Promise<BroadcastResult>
  /** To one session; rejects with code `LONGPOLL_NO_SUCH_SESSION` for an unknown id. */
  send (sessionId: string, data: unknown): Promise<PublishResult>
  /** To every live session of a user (the message has `toUser: true`, `to: null`). */
  sendToUser (user: string, data: unknown): Promise<BroadcastResult>
  /** Live members of a room, or every live session: all pages. */
  members (room?: string): Promise<Member[]>
  /**
   * Puts a session into a room (without asking `authorize`), with the same `join` message as the
   * route. False when it was a member already or does not exist; rejects with
   * `LONGPOLL_TOO_MANY_ROOMS` when the session is in `maxRoomsPerSession` rooms.
   */
  join (sessionId: string, room: string): Promise<boolean>
  /** Takes a session out of a room, with the same `leave` message; false when it was not in it. */
  leave (sessionId: string, room: string): Promise<boolean>
  /** The user's live sessions. */
  userSessions (user: string): Promise<Member[]>
  /** Ends a session as `DELETE /session` would; false when it did not exist. */
  endSession (sessionId: string): Promise<boolean>
  /** Ends every session of the user (their held polls are answered 401); the number ended. */
  endUser (user: string): Promise<number>
  /** The room's most recent kept messages (or those before `before`, a `next` cursor), oldest first; `limit` defaults to historyPageSize. */
  history (room: string, options?: { before?: string, limit?: number }): Promise<HistoryPage>
  stats (): Promise<LongPollStats>
}

declare module 'fastify' {
  interface FastifyInstance {
    longPoll: LongPollDecorator
  }
}
