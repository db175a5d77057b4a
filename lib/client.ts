/**
 * The typed client of fastify-long-poll-chat (`fastify-long-poll-chat/client`), for browsers and
 * Node 20. It depends on nothing but `fetch` and `AbortController`, and imports nothing at run time
 * from the rest of the package, so `tsconfig.browser.json` compiles this file alone into a
 * standalone ES module (`dist/browser/client.js`).
 *
 * What it does, per PROTOCOL.md: registers a session, then polls in a loop with its cursor;
 * hands each message to the application once and in order (deduplicated by id in a bounded
 * window); registers again when the session is gone (401) and says so; reports `missed` counts;
 * backs off with jitter on network errors and 5xx, honouring `retry-after` on 503 and 429;
 * stops on 409 (another poller took the session) instead of fighting over it; and `close()`
 * aborts the held poll and ends the session.
 */

/* ------------------------------------------------------------------------------------------ */
/* Types                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/** A profile: small app data shown to others in member lists (for example a display name). */
export type Profile = Record<string, unknown>

interface MessageBase {
  id: string
  /** Sender's session id; null for messages the application sent through `app.longPoll`. */
  from: string | null
  room: string | null
  to: string | null
  /** Epoch milliseconds at which the server accepted the message. */
  ts: number
}

/**
 * A message as the client hands it over: an application message whose `data` is `T`, or a
 * `join`/`leave` notice whose `data` is the joiner's (leaver's) profile.
 */
export type ChatMessage<T = unknown, P extends Profile = Profile> =
  | (MessageBase & { type: 'message', data: T })
  | (MessageBase & { type: 'join' | 'leave', data: P | null })

export interface ChatMember<P extends Profile = Profile> {
  id: string
  profile: P | null
  /** Epoch milliseconds of the member's last authenticated request. */
  lastSeen: number
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

export interface SendResult {
  id: string
  ts: number
}

/** Where `send()` delivers: a room, one session, or (neither) every session. */
export type SendTarget = { room: string, to?: undefined } | { to: string, room?: undefined }

/** An error from a request: `statusCode` and `code` come from the server's error body. */
export class ChatClientError extends Error {
  /** HTTP status; undefined for network errors and timeouts. */
  statusCode: number | undefined
  /** The server's code (`LONGPOLL_…`, `FST_ERR_…`), or `LONGPOLL_CLIENT_NETWORK`, `LONGPOLL_CLIENT_TIMEOUT`, `LONGPOLL_CLIENT_CLOSED`. */
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

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */
/* ------------------------------------------------------------------------------------------ */

type Timer = ReturnType<typeof setTimeout>

/** `retry-after` in ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
function parseRetryAfter (value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now())
}

/** Remembers the last `size` ids (a ring buffer over a Set): bounded memory. */
class RecentIds {
  private readonly ring: Array<string | undefined>
  private readonly set = new Set<string>()
  private next = 0

  constructor (size: number) {
    this.ring = new Array<string | undefined>(Math.max(1, size))
  }

  /** True when the id was new (and is now remembered). */
  add (id: string): boolean {
    if (this.set.has(id)) return false
    const old = this.ring[this.next]
    if (old !== undefined) this.set.delete(old)
    this.ring[this.next] = id
    this.next = (this.next + 1) % this.ring.length
    this.set.add(id)
    return true
  }
}

/** A sleep that `cancel()` ends early (resolving, not rejecting). */
interface Sleep { promise: Promise<void>, cancel: () => void }

function sleep (ms: number): Sleep {
  let timer: Timer | undefined
  let done: () => void = () => {}
  const promise = new Promise<void>(resolve => {
    done = resolve
    timer = setTimeout(resolve, ms)
  })
  return {
    promise,
    cancel () {
      clearTimeout(timer)
      done()
    }
  }
}

interface RequestOptions {
  body?: unknown
  token?: string
  headers?: Record<string, string>
  timeoutMs: number
  /** Aborts the request when the client closes (polls, registration); other requests run to their end. */
  abortable?: boolean
  keepalive?: boolean
}

interface RegisterResponse {
  id: string
  token: string
  cursor: string
  pollTimeoutMs: number
  messageTtlMs: number
  sessionTtlMs: number
}

interface PollResponse {
  cursor: string
  messages: Array<ChatMessage<unknown, Profile>>
  missed: number
}

type Listener<E> = (event: E) => void

/* ------------------------------------------------------------------------------------------ */
/* The client                                                                                 */
/* ------------------------------------------------------------------------------------------ */

export class ChatClient<T = unknown, P extends Profile = Profile> implements AsyncIterable<ChatMessage<T, P>> {
  private readonly base: string
  private readonly doFetch: typeof fetch
  private readonly profile: P | null
  private readonly rooms: Set<string>
  private readonly opts: ChatClientOptions<P>
  private readonly retryMin: number
  private readonly retryMax: number
  private readonly requestTimeout: number
  private readonly highWaterMark: number
  private readonly recent: RecentIds
  private readonly listeners = new Map<ChatEventName, Set<Listener<any>>>()
  private readonly iterators = new Set<MessageQueue<ChatMessage<T, P>>>()
  /** Messages that arrived while nobody consumed them; handed to the first consumer. */
  private readonly pending: Array<ChatMessage<T, P>> = []

  private current: ChatSession | null = null
  /** The id of the last session this client had, for the `session` event's `previousId`. */
  private lastId: string | null = null
  private pollTimeoutMs = 25_000
  private registering: Promise<ChatSession> | null = null
  private currentState: ChatState = 'connecting'
  private reason: CloseReason | null = null
  private failures = 0
  private readonly closeController = new AbortController()
  private backoff: Sleep | null = null
  private drained: Sleep | null = null
  private closing: Promise<void> | null = null
  private readonly loop: Promise<void>
  private readonly readyPromise: Promise<void>
  private resolveReady: () => void = () => {}
  private rejectReady: (err: Error) => void = () => {}
  private readonly onOnline = (): void => { this.reconnect() }

  constructor (options: ChatClientOptions<P>) {
    if (typeof options?.url !== 'string' || options.url === '') throw new TypeError('createChatClient: `url` is required')
    const doFetch = options.fetch ?? globalThis.fetch
    if (typeof doFetch !== 'function') throw new TypeError('createChatClient: no fetch available; pass `fetch`')
    this.opts = options
    this.base = options.url.replace(/\/+$/, '')
    // Called as a plain function: browsers throw "Illegal invocation" for fetch called on another object.
    this.doFetch = async (input, init) => await doFetch(input, init)
    this.profile = options.profile ?? null
    this.rooms = new Set(options.rooms ?? [])
    this.retryMin = Math.max(1, options.retry?.min ?? 250)
    this.retryMax = Math.max(this.retryMin, options.retry?.max ?? 10_000)
    this.requestTimeout = options.requestTimeout ?? 15_000
    this.highWaterMark = Math.max(1, options.highWaterMark ?? 1000)
    this.recent = new RecentIds(options.dedupeWindow ?? 2048)
    if (options.session !== undefined) {
      this.current = { ...options.session }
      this.lastId = options.session.id
    }
    this.readyPromise = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve
      this.rejectReady = reject
    })
    // Nobody has to await ready(): never report it as an unhandled rejection.
    this.readyPromise.catch(() => {})
    const target = globalThis as { addEventListener?: (type: string, fn: () => void) => void }
    if (typeof target.addEventListener === 'function') target.addEventListener('online', this.onOnline)
    this.loop = this.run()
  }

  /** This client's session id (public, used by others to address direct messages); null before registration. */
  get id (): string | null {
    return this.current?.id ?? null
  }

  /** The session (id, secret token, cursor), to resume it later with the `session` option. */
  get session (): ChatSession | null {
    return this.current === null ? null : { ...this.current }
  }

  get state (): ChatState {
    return this.currentState
  }

  /** Why the client is closed; null while it runs. */
  get closeReason (): CloseReason | null {
    return this.reason
  }

  /** The rooms the client is in (as it will ask for them when registering again). */
  get joinedRooms (): string[] {
    return [...this.rooms]
  }

  /** Resolves once a session is registered (or resumed); rejects if the client closes first. */
  ready (): Promise<void> {
    return this.readyPromise
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends ChatEventName> (type: K, listener: Listener<ChatClientEvents<T, P>[K]>): () => void {
    let set = this.listeners.get(type)
    if (set === undefined) {
      set = new Set()
      this.listeners.set(type, set)
    }
    set.add(listener)
    if (type === 'message' && this.pending.length > 0) queueMicrotask(() => this.flushPending())
    return () => this.off(type, listener)
  }

  off<K extends ChatEventName> (type: K, listener: Listener<ChatClientEvents<T, P>[K]>): void {
    this.listeners.get(type)?.delete(listener)
  }

  /** Every message once, in order, from the moment the iteration starts (plus any not yet consumed). */
  [Symbol.asyncIterator] (): AsyncIterator<ChatMessage<T, P>> {
    const queue = new MessageQueue<ChatMessage<T, P>>(() => {
      this.iterators.delete(queue)
      this.onDrain()
    }, () => this.onDrain())
    if (this.currentState === 'closed') {
      queue.push(...this.pending.splice(0))
      queue.end()
      return queue
    }
    this.iterators.add(queue)
    this.flushPending()
    return queue
  }

  /** Sends `data` to a room, to one session (`to`: its id), or with no target to every session. */
  async send (data: T, target?: SendTarget): Promise<SendResult> {
    const body: { data: T, room?: string, to?: string } = { data }
    if (target?.room !== undefined) body.room = target.room
    if (target?.to !== undefined) body.to = target.to
    // A 401 means the server did not take the message: sending again after registering is safe.
    return await this.authed<SendResult>('POST', '/messages', body)
  }

  /** Joins a room (a no-op for a room the session is in). */
  async join (room: string): Promise<void> {
    await this.authed('POST', `/rooms/${encodeURIComponent(room)}/join`)
    this.rooms.add(room)
  }

  /** Leaves a room (a no-op for a room the session is not in). */
  async leave (room: string): Promise<void> {
    await this.authed('POST', `/rooms/${encodeURIComponent(room)}/leave`)
    this.rooms.delete(room)
  }

  /** The room's live members (the session must be one). */
  async members (room: string): Promise<Array<ChatMember<P>>> {
    const res = await this.authed<{ members: Array<ChatMember<P>> }>('GET', `/rooms/${encodeURIComponent(room)}/members`)
    return res.members
  }

  /** Cuts the current wait short and tries at once (for example when the network is back). */
  reconnect (): void {
    this.failures = 0
    this.backoff?.cancel()
  }

  /** Stops polling (aborting the held poll), ends the session on the server, and resolves when done. */
  close (): Promise<void> {
    this.closing ??= this.shutdown('closed')
    return this.closing
  }

  /* ---------------------------------------------------------------------------------------- */

  private async shutdown (reason: CloseReason, error?: ChatClientError): Promise<void> {
    if (this.reason === null) this.reason = reason
    this.closeController.abort()
    this.backoff?.cancel()
    this.drained?.cancel()
    const target = globalThis as { removeEventListener?: (type: string, fn: () => void) => void }
    if (typeof target.removeEventListener === 'function') target.removeEventListener('online', this.onOnline)
    await this.loop
    if (this.registering !== null) await this.registering.catch(() => {})
    const session = this.current
    if (reason === 'closed' && session !== null) {
      await this.request('DELETE', '/session', { token: session.token, timeoutMs: this.requestTimeout, keepalive: true })
        .catch(() => {})
    }
    this.rejectReady(new ChatClientError('The client closed before it registered', 'LONGPOLL_CLIENT_CLOSED'))
    for (const queue of this.iterators) queue.end()
    this.setState('closed', error)
  }

  private async run (): Promise<void> {
    if (this.current !== null) this.resolveReady()
    while (!this.closeController.signal.aborted) {
      let session: ChatSession | null = this.current
      try {
        session ??= await this.register(null)
        await this.waitForConsumers()
        if (this.closeController.signal.aborted) break
        await this.poll(session)
        this.failures = 0
        if (this.currentState !== 'live') this.setState('live')
      } catch (err) {
        if (this.closeController.signal.aborted) break
        const error = toClientError(err)
        if (error.statusCode === 409) {
          this.emit('superseded', { error })
          this.closing ??= this.shutdown('superseded', error)
          break
        }
        if (error.statusCode === 401 && error.code !== 'LONGPOLL_REGISTER_REFUSED') {
          // The server forgot the session (expired, or a restarted in-memory server): register
          // again at once; a second 401 in a row backs off like any failure.
          if (session !== null && this.current === session) this.current = null
          if (this.failures === 0) {
            this.failures = 1
            continue
          }
        } else if (error.code === 'LONGPOLL_BAD_CURSOR' && session !== null && this.current === session) {
          // The server no longer knows this cursor: poll from its position for the session.
          session.cursor = null
        } else if (error.code === 'LONGPOLL_REGISTER_REFUSED') {
          this.emit('error', error)
          this.closing ??= this.shutdown('refused', error)
          break
        }
        await this.retryAfter(error)
      }
    }
  }

  /** Waits before the next attempt: `retry-after` when the server gave one, else exponential backoff with jitter. */
  private async retryAfter (error: ChatClientError): Promise<void> {
    this.failures++
    const exp = Math.min(this.retryMax, this.retryMin * 2 ** Math.min(this.failures - 1, 30))
    let delayMs = exp / 2 + Math.random() * exp / 2
    if (error.retryAfterMs !== undefined && (error.statusCode === 503 || error.statusCode === 429)) {
      // At least what the server asked for, plus up to 10% so that clients do not return together.
      delayMs = Math.min(error.retryAfterMs, 300_000) * (1 + Math.random() * 0.1)
    }
    delayMs = Math.round(delayMs)
    this.setState('retrying', error)
    this.emit('retrying', { attempt: this.failures, delayMs, error })
    this.backoff = sleep(delayMs)
    await this.backoff.promise
    this.backoff = null
  }

  /**
   * Registers a session, once for all callers: `stale` is the session the caller found
   * rejected (null when there was none); when another call already replaced it, that one is used.
   */
  private async register (stale: ChatSession | null): Promise<ChatSession> {
    if (this.current !== null && this.current !== stale) return this.current
    this.registering ??= this.doRegister().finally(() => { this.registering = null })
    return await this.registering
  }

  private async doRegister (): Promise<ChatSession> {
    if (this.currentState !== 'connecting' && this.currentState !== 'closed') this.setState('connecting')
    const extra = typeof this.opts.registerHeaders === 'function' ? await this.opts.registerHeaders() : this.opts.registerHeaders
    const body: { rooms: string[], profile?: P } = { rooms: [...this.rooms] }
    if (this.profile !== null) body.profile = this.profile
    let res: RegisterResponse
    try {
      res = await this.request<RegisterResponse>('POST', '/register', { body, headers: extra, timeoutMs: this.requestTimeout, abortable: true })
    } catch (err) {
      const error = toClientError(err)
      const status = error.statusCode
      if (status !== undefined && status >= 400 && status < 500 && status !== 429 && status !== 408) {
        // Retrying cannot fix a refused registration (authentication, bad room, profile too large).
        throw new ChatClientError(`Registration refused: ${error.message}`, 'LONGPOLL_REGISTER_REFUSED', status, undefined, error)
      }
      throw error
    }
    const session: ChatSession = { id: res.id, token: res.token, cursor: res.cursor }
    if (typeof res.pollTimeoutMs === 'number') this.pollTimeoutMs = res.pollTimeoutMs
    const previous = this.lastId
    this.lastId = session.id
    this.current = session
    this.resolveReady()
    if (this.currentState !== 'closed') this.setState('live')
    this.emit('session', { id: session.id, previousId: previous })
    return session
  }

  private async poll (session: ChatSession): Promise<void> {
    const params = new URLSearchParams()
    if (session.cursor !== null) params.set('cursor', session.cursor)
    // After a failure, the first poll asks for an answer at once (wait=0): a held poll says
    // nothing until it is answered, and the client should know it is live again right away.
    const wait = this.currentState === 'retrying' ? 0 : this.opts.wait
    if (wait !== undefined) params.set('wait', String(wait))
    const query = params.toString()
    const hold = wait === undefined ? this.pollTimeoutMs : Math.min(wait, this.pollTimeoutMs)
    const res = await this.request<PollResponse>('GET', `/poll${query === '' ? '' : '?' + query}`, {
      token: session.token,
      timeoutMs: hold + this.requestTimeout,
      abortable: true
    })
    if (this.current !== session) return
    session.cursor = res.cursor
    if (res.missed > 0) this.emit('missed', { count: res.missed })
    for (const message of res.messages) {
      if (this.recent.add(message.id)) this.deliver(message as ChatMessage<T, P>)
    }
  }

  /** An authenticated request; on 401 registers again and retries once. */
  private async authed<R> (method: string, path: string, body?: unknown): Promise<R> {
    if (this.reason !== null) throw new ChatClientError('The client is closed', 'LONGPOLL_CLIENT_CLOSED')
    let session = this.current ?? await this.register(null)
    try {
      return await this.request<R>(method, path, { body, token: session.token, timeoutMs: this.requestTimeout })
    } catch (err) {
      if (!(err instanceof ChatClientError) || err.statusCode !== 401 || this.reason !== null) throw err
      if (this.current === session) this.current = null
      session = await this.register(session)
      this.backoff?.cancel()
      return await this.request<R>(method, path, { body, token: session.token, timeoutMs: this.requestTimeout })
    }
  }

  private async request<R> (method: string, path: string, options: RequestOptions): Promise<R> {
    const controller = new AbortController()
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; controller.abort() }, options.timeoutMs)
    const onClose = (): void => controller.abort()
    if (options.abortable === true) {
      if (this.closeController.signal.aborted) controller.abort()
      this.closeController.signal.addEventListener('abort', onClose)
    }
    const headers: Record<string, string> = { ...options.headers }
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
    const init: RequestInit = { method, headers, signal: controller.signal }
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json'
      init.body = JSON.stringify(options.body)
    }
    if (options.keepalive === true) init.keepalive = true
    try {
      let res: Response
      let text: string
      try {
        res = await this.doFetch(this.base + path, init)
        text = await res.text()
      } catch (err) {
        if (timedOut) throw new ChatClientError(`${method} ${path} timed out`, 'LONGPOLL_CLIENT_TIMEOUT', undefined, undefined, err)
        if (controller.signal.aborted) throw new ChatClientError('The client is closed', 'LONGPOLL_CLIENT_CLOSED', undefined, undefined, err)
        throw new ChatClientError(`${method} ${path} failed: ${String((err as Error)?.message ?? err)}`, 'LONGPOLL_CLIENT_NETWORK', undefined, undefined, err)
      }
      let json: unknown
      try {
        json = text === '' ? undefined : JSON.parse(text)
      } catch {
        json = undefined
      }
      if (!res.ok) {
        const body = (json ?? {}) as { code?: unknown, message?: unknown }
        const code = typeof body.code === 'string' ? body.code : `HTTP_${res.status}`
        const message = typeof body.message === 'string' ? body.message : `${method} ${path}: HTTP ${res.status}`
        throw new ChatClientError(message, code, res.status, parseRetryAfter(res.headers.get('retry-after')))
      }
      return json as R
    } finally {
      clearTimeout(timer)
      this.closeController.signal.removeEventListener('abort', onClose)
    }
  }

  /* ---------------------------------------------------------------------------------------- */

  private hasConsumers (): boolean {
    return this.iterators.size > 0 || (this.listeners.get('message')?.size ?? 0) > 0
  }

  private deliver (message: ChatMessage<T, P>): void {
    if (!this.hasConsumers()) {
      this.pending.push(message)
      return
    }
    for (const queue of this.iterators) queue.push(message)
    this.emit('message', message)
  }

  private flushPending (): void {
    if (this.pending.length === 0 || !this.hasConsumers()) return
    for (const message of this.pending.splice(0)) this.deliver(message)
    this.onDrain()
  }

  /** Backpressure: no new poll while a consumer is `highWaterMark` messages behind. */
  private async waitForConsumers (): Promise<void> {
    while (!this.closeController.signal.aborted && this.backlog() >= this.highWaterMark) {
      this.drained = sleep(1000)
      await this.drained.promise
      this.drained = null
    }
  }

  private backlog (): number {
    let most = this.pending.length
    for (const queue of this.iterators) most = Math.max(most, queue.length)
    return most
  }

  private onDrain (): void {
    if (this.drained !== null && this.backlog() < this.highWaterMark) this.drained.cancel()
  }

  private setState (state: ChatState, error?: ChatClientError): void {
    const previous = this.currentState
    if (previous === state || previous === 'closed') return
    this.currentState = state
    const event: ChatClientEvents<T, P>['state'] = { state, previous }
    if (state === 'closed' && this.reason !== null) event.reason = this.reason
    if (error !== undefined) event.error = error
    this.emit('state', event)
  }

  private emit<K extends ChatEventName> (type: K, event: ChatClientEvents<T, P>[K]): void {
    const set = this.listeners.get(type)
    if (set === undefined) return
    for (const listener of [...set]) {
      try {
        listener(event)
      } catch (err) {
        // A throwing listener must not stop delivery; it is reported on `error` (never recursively).
        if (type !== 'error') this.emit('error', err instanceof Error ? err : new Error(String(err)))
      }
    }
  }
}

function toClientError (err: unknown): ChatClientError {
  if (err instanceof ChatClientError) return err
  return new ChatClientError(String((err as Error)?.message ?? err), 'LONGPOLL_CLIENT_NETWORK', undefined, undefined, err)
}

/** The queue behind one async iteration. */
class MessageQueue<M> implements AsyncIterator<M> {
  private readonly items: M[] = []
  private readonly waiting: Array<(result: IteratorResult<M>) => void> = []
  private ended = false

  constructor (private readonly onReturn: () => void, private readonly onTake: () => void) {}

  get length (): number {
    return this.items.length
  }

  push (...items: M[]): void {
    if (this.ended) return
    for (const item of items) {
      const resolve = this.waiting.shift()
      if (resolve !== undefined) resolve({ value: item, done: false })
      else this.items.push(item)
    }
  }

  end (): void {
    this.ended = true
    for (const resolve of this.waiting.splice(0)) resolve({ value: undefined, done: true })
  }

  async next (): Promise<IteratorResult<M>> {
    if (this.items.length > 0) {
      const value = this.items.shift() as M
      this.onTake()
      return { value, done: false }
    }
    if (this.ended) return { value: undefined, done: true }
    return await new Promise(resolve => this.waiting.push(resolve))
  }

  async return (): Promise<IteratorResult<M>> {
    this.items.length = 0
    this.end()
    this.onReturn()
    return { value: undefined, done: true }
  }
}

/**
 * Creates a client and starts it: it registers, then polls until `close()`.
 *
 * ```ts
 * const chat = createChatClient<{ text: string }>({ url: '/chat', profile: { name: 'Ada' }, rooms: ['lobby'] })
 * chat.on('message', m => { if (m.type === 'message') console.log(m.from, m.data.text) })
 * await chat.send({ text: 'hello' }, { room: 'lobby' })
 * ```
 */
export function createChatClient<T = unknown, P extends Profile = Profile> (options: ChatClientOptions<P>): ChatClient<T, P> {
  return new ChatClient<T, P>(options)
}

export default createChatClient
