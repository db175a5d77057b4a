/**
 * The client's public types and its error class. The message and member types refine the wire
 * shapes of lib/wire.ts (imported as types only: nothing of wire.ts reaches the browser bundle),
 * so a change of the wire format that the client does not follow is a tsc error here.
 */
import type { Member as WireMember, Message as WireMessage, MessageReply, Profile as WireProfile } from '../wire.js'

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

export interface ChatClientEvents<T = unknown, P extends Profile = Profile> {
  /** Each message once, in the order of the session's mailbox. */
  message: ChatMessage<T, P>
  /** A session was registered: at start (`previousId` null) and again after a 401. */
  session: { id: string, previousId: string | null }
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
}

/** What `send()` resolves with: the wire reply of `POST /messages`. */
export type SendResult = MessageReply

/** Where `send()` delivers: a room, one session, or (neither) every session. */
export type SendTarget = { room: string, to?: undefined } | { to: string, room?: undefined }

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
