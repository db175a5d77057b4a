/**
 * The client's public types and its error class. The message and member types refine the wire
 * shapes of lib/wire.ts (imported as types only: nothing of wire.ts reaches the browser bundle),
 * so a change of the wire format that the client does not follow is a tsc error here.
 */
import type { Member as WireMember, Message as WireMessage, MessageReply, Profile as WireProfile } from '../wire.js'
import type { PersistOption } from './storage.js'

export type { ChatStorage, PersistOption } from './storage.js'

/** A profile: small app data shown to others in member lists (for example a display name). */
export type Profile = WireProfile

/** The wire message without the fields the client narrows. */
type MessageBase = Omit<WireMessage, 'type' | 'data'>

/**
 * `M`, checked to be a refinement of the wire message: each member of the union is a wire
 * `Message`, and together they cover every wire `type` (`Types`). The constraints are
 * the check; the conditional only repeats the second one.
 */
type WireRefinement<M extends WireMessage, Types extends M['type']> = [Types] extends [M['type']] ? M : never

/**
 * A message as the client hands it over: an application message whose `data` is `T`, or a
 * `join`/`leave` notice whose `data` is the joiner's (leaver's) profile.
 */
export type ChatMessage<T = unknown, P extends Profile = Profile> = WireRefinement<
  | (MessageBase & { type: 'message', data: T })
  | (MessageBase & { type: 'join' | 'leave', data: P | null }),
  WireMessage['type']
>

/** A member as `members()` returns it, with the profile type of the application. */
export interface ChatMember<P extends Profile = Profile> extends WireMember {
  profile: P | null
}

/**
 * - `connecting`: registering a session (at start, or again after the server forgot it);
 * - `live`: registered and polling;
 * - `retrying`: the last request failed; waiting before the next attempt;
 * - `closed`: stopped for good (see `closeReason`).
 */
export type ChatState = 'connecting' | 'live' | 'retrying' | 'closed'

/**
 * Why a client stopped: `closed` (the application called `close()`), `superseded` (409: another
 * poller took the session), `refused` (the server refused registration with a 4xx that retrying
 * cannot fix, for example 401 from the `authenticate` option).
 */
export type CloseReason = 'closed' | 'superseded' | 'refused'

/**
 * - `single`: this client polls for itself (no `shared`, or the browser lacks Web Locks or
 *   BroadcastChannel);
 * - `leader`: this tab polls for the tabs of its group;
 * - `follower`: another tab polls; this one gets the messages from it.
 */
export type ChatRole = 'single' | 'leader' | 'follower'

export interface CloseOptions {
  /**
   * Keep the session: do not end it on the server, keep it in storage (`persist`), and in a tab
   * group leave the other tabs running. Default false: the session ends, for every tab of a group.
   */
  keepSession?: boolean
}

export interface ChatClientEvents<T = unknown, P extends Profile = Profile> {
  /** Each message once, in the order of the session's mailbox. */
  message: ChatMessage<T, P>
  /**
   * A session was registered: at start (`previousId` null) and again after a 401; in a tab group,
   * also when this tab learns the group's session from another tab. Not on a resumed session.
   */
  session: { id: string, previousId: string | null }
  /** This tab started or stopped polling for its group (`shared`). */
  role: { role: ChatRole }
  /** Messages for this session that were dropped undelivered (expired or overflowed). */
  missed: { count: number }
  state: { state: ChatState, previous: ChatState, reason?: CloseReason, error?: ChatClientError }
  /** A request failed; the next attempt is in `delayMs`. */
  retrying: { attempt: number, delayMs: number, error: ChatClientError }
  /** 409: another poll of this session took over; the client is now closed. */
  superseded: { error: ChatClientError }
  /** An error the application may want to log: a refused registration, a throwing listener. */
  error: Error
}

export type ChatEventName = keyof ChatClientEvents

/** The session as the client holds it; keep it (e.g. in sessionStorage) to resume it later. */
export interface ChatSession {
  id: string
  token: string
  cursor: string | null
}

export interface ChatClientOptions<P extends Profile = Profile> {
  /** The plugin's base URL, prefix included: `http://localhost:3000/chat` (or `/chat` in a page). */
  url: string
  /** Profile sent at registration (shown to others in member lists and join/leave notices). */
  profile?: P | null
  /** Rooms to join at registration. `join()`/`leave()` update the list used when registering again. */
  rooms?: string[]
  /** A session to resume (from `client.session`) instead of registering a new one. */
  session?: ChatSession
  /** The fetch to use (defaults to the global one). */
  fetch?: typeof fetch
  /** Headers for `POST /register` (for the server's `authenticate` option). */
  registerHeaders?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>)
  /** `wait` sent with each poll: the longest hold in ms (the server caps it). Default: the server's. */
  wait?: number
  /** Backoff after failures: `min` (250 ms) doubling up to `max` (10 000 ms), with jitter. */
  retry?: { min?: number, max?: number }
  /** Timeout of requests other than polls, ms (15 000). Polls time out after their hold plus this. */
  requestTimeout?: number
  /** How many recent message ids are remembered to drop duplicates (2048). */
  dedupeWindow?: number
  /**
   * Messages buffered for slow consumers (an async iterator that is not pulled, or no consumer at
   * all yet) before the client stops polling until they are taken (1000). Messages wait in the
   * server's mailbox meanwhile; nothing is dropped by the client.
   */
  highWaterMark?: number
  /**
   * Keep the session (id, token, cursor, rooms, recent message ids) in the page's storage and
   * resume it on the next load: `'session'` (sessionStorage: per tab, survives reloads),
   * `'local'` (localStorage: shared by the origin's tabs and kept after the browser closes; only
   * with `shared`, else it acts as `'session'`), or any object with `getItem`, `setItem`,
   * `removeItem`. Default: off. See the README for what it keeps and when.
   */
  persist?: PersistOption
  /**
   * Share one session and one held poll between the tabs of an origin (one tab polls, the others
   * receive over a BroadcastChannel). Needs Web Locks and BroadcastChannel; without them the
   * client polls alone. Default: off.
   */
  shared?: boolean | SharedOptions
  /** The storage key and tab group name (default: derived from the absolute `url`). */
  name?: string
}

/** The Web Locks API, as far as the group uses it. */
export interface LockManagerLike {
  request: (name: string, options: { steal?: boolean, signal?: AbortSignal }, callback: (lock: unknown) => Promise<void>) => Promise<unknown>
}

/** A `BroadcastChannel`, as far as the group uses it. */
export interface ChannelLike {
  onmessage: ((event: { data: unknown }) => void) | null
  postMessage: (message: unknown) => void
  close: () => void
}

/** `shared`: the tab group's timing, and the APIs it uses (for tests, or other environments). */
export interface SharedOptions {
  /** Ping period of followers, ms (1000); a leader silent for twice that (plus jitter) is replaced. */
  heartbeat?: number
  /** How long a new leader waits for the other tabs' newest batches, ms (150). */
  settle?: number
  /** Defaults to `navigator.locks`. */
  locks?: LockManagerLike
  /** Defaults to the global `BroadcastChannel`. */
  BroadcastChannel?: new (name: string) => ChannelLike
}

/** What `send()` resolves with: the wire reply of `POST /messages`. */
export type SendResult = MessageReply

/**
 * Where `send()` delivers, exactly one of: a room's members (`room`), one session (`to`: its id),
 * the person behind a session (`toUser`: a session id; every live session of that session's
 * user gets it, or that session alone when it has no user). No target: every session.
 */
export type SendTarget =
  | { room: string, to?: undefined, toUser?: undefined }
  | { to: string, room?: undefined, toUser?: undefined }
  | { toUser: string, room?: undefined, to?: undefined }

/** `join(room, { history })`: also return up to `history` of the room's recent messages (1 … the server's history page size, 50). */
export interface JoinOptions {
  history: number
}

/** `history(room, options)`: `limit` messages at most (default and maximum: the server's page size, 50), before the page cursor `before` (a `next`). */
export interface HistoryOptions {
  before?: string
  limit?: number
}

/** A page of a room's history, oldest first; `next` pages further back (`before: next`), null when there is nothing older. */
export interface HistoryPage<T = unknown, P extends Profile = Profile> {
  messages: Array<ChatMessage<T, P>>
  next: string | null
}

/** `membersPage(room, options)`: `limit` members at most (default and maximum: the server's page size, 100), after the page cursor `after` (a `next`). */
export interface MembersPageOptions {
  after?: string
  limit?: number
}

/** A page of a room's members, in the order they joined; `next` is the next page's `after`, null on the last page. */
export interface MembersPage<P extends Profile = Profile> {
  members: Array<ChatMember<P>>
  next: string | null
}

/** An error from a request: `statusCode` and `code` come from the server's error body. */
export class ChatClientError extends Error {
  /** HTTP status; undefined for network errors and timeouts. */
  statusCode: number | undefined
  /**
   * The server's code (`LONGPOLL_…`, `FST_ERR_…`), or one the client makes: `LONGPOLL_CLIENT_NETWORK`,
   * `LONGPOLL_CLIENT_TIMEOUT`, `LONGPOLL_CLIENT_CLOSED`, `LONGPOLL_REGISTER_REFUSED`.
   */
  code: string
  /** `retry-after` of the response, in ms, when it had one. */
  retryAfterMs: number | undefined

  constructor (message: string, code: string, statusCode?: number, retryAfterMs?: number, cause?: unknown) {
    super(message)
    this.name = 'ChatClientError'
    // `cause` as ES2022 sets it; assigned by hand so that the ES2020 browser build has it too.
    if (cause !== undefined) Object.defineProperty(this, 'cause', { value: cause, writable: true, configurable: true })
    this.code = code
    this.statusCode = statusCode
    this.retryAfterMs = retryAfterMs
  }
}
