/**
 * The typed client of fastify-long-poll-chat (`fastify-long-poll-chat/client`), for browsers and
 * Node 20. It depends on nothing but `fetch` and `AbortController`, and imports nothing at run time
 * from the rest of the package (only types, from lib/wire.ts), so the build bundles the files of
 * lib/client/ alone into a standalone ES module (`dist/browser/client.js`).
 *
 * What it does, per PROTOCOL.md: registers a session, then polls in a loop with its cursor;
 * hands each message to the application once and in order (deduplicated by id in a bounded
 * window); registers again when the session is gone (401) and says so; reports `missed` counts;
 * backs off with jitter on network errors and 5xx, honouring `retry-after` on 503 and 429;
 * stops on 409 (another poller took the session) instead of fighting over it; and `close()`
 * aborts the held poll and ends the session.
 *
 * The files: this one holds the session and the poll loop (state, retries, registering again);
 * http.ts the requests (one method per route, timeouts, error mapping); inbox.ts the consumers
 * (events, async iteration, backpressure); queue.ts small data structures; types.ts the public
 * types and `ChatClientError`.
 */
import type { ErrorCode, MessageBody, RegisterBody } from '../wire.js'
import { toClientError, Transport } from './http.js'
import { Inbox, type Listener } from './inbox.js'
import { RecentIds, sleep, type Sleep } from './queue.js'
import {
  ChatClientError, type ChatClientEvents, type ChatClientOptions, type ChatEventName, type ChatMember,
  type ChatMessage, type ChatSession, type ChatState, type CloseReason, type Profile, type SendResult,
  type SendTarget
} from './types.js'

export * from './types.js'

export class ChatClient<T = unknown, P extends Profile = Profile> implements AsyncIterable<ChatMessage<T, P>> {
  private readonly transport: Transport
  private readonly profile: P | null
  private readonly rooms: Set<string>
  private readonly opts: ChatClientOptions<P>
  private readonly retryMin: number
  private readonly retryMax: number
  private readonly recent: RecentIds
  private readonly inbox: Inbox<T, P>

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
    this.transport = new Transport(options.url, doFetch, this.closeController.signal, options.requestTimeout ?? 15_000)
    this.profile = options.profile ?? null
    this.rooms = new Set(options.rooms ?? [])
    this.retryMin = Math.max(1, options.retry?.min ?? 250)
    this.retryMax = Math.max(this.retryMin, options.retry?.max ?? 10_000)
    this.inbox = new Inbox<T, P>(Math.max(1, options.highWaterMark ?? 1000))
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
    this.inbox.on(type, listener)
    return () => this.off(type, listener)
  }

  off<K extends ChatEventName> (type: K, listener: Listener<ChatClientEvents<T, P>[K]>): void {
    this.inbox.off(type, listener)
  }

  /** Every message once, in order, from the moment the iteration starts (plus any not yet consumed). */
  [Symbol.asyncIterator] (): AsyncIterator<ChatMessage<T, P>> {
    return this.inbox.iterate(this.currentState === 'closed')
  }

  /** Sends `data` to a room, to one session (`to`: its id), or with no target to every session. */
  async send (data: T, target?: SendTarget): Promise<SendResult> {
    const body: MessageBody = { data }
    if (target?.room !== undefined) body.room = target.room
    if (target?.to !== undefined) body.to = target.to
    // A 401 means the server did not take the message: sending again after registering is safe.
    return await this.authed(token => this.transport.send(token, body))
  }

  /** Joins a room (a no-op for a room the session is in). */
  async join (room: string): Promise<void> {
    await this.authed(token => this.transport.join(token, room))
    this.rooms.add(room)
  }

  /** Leaves a room (a no-op for a room the session is not in). */
  async leave (room: string): Promise<void> {
    await this.authed(token => this.transport.leave(token, room))
    this.rooms.delete(room)
  }

  /** The room's live members (the session must be one). */
  async members (room: string): Promise<Array<ChatMember<P>>> {
    const res = await this.authed(token => this.transport.members(token, room))
    return res.members as Array<ChatMember<P>>
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
    this.inbox.stopWaiting()
    const target = globalThis as { removeEventListener?: (type: string, fn: () => void) => void }
    if (typeof target.removeEventListener === 'function') target.removeEventListener('online', this.onOnline)
    await this.loop
    if (this.registering !== null) await this.registering.catch(() => {})
    const session = this.current
    if (reason === 'closed' && session !== null) await this.transport.endSession(session.token).catch(() => {})
    this.rejectReady(new ChatClientError('The client closed before it registered', 'LONGPOLL_CLIENT_CLOSED'))
    this.inbox.end()
    this.setState('closed', error)
  }

  private async run (): Promise<void> {
    if (this.current !== null) this.resolveReady()
    while (!this.closeController.signal.aborted) {
      let session: ChatSession | null = this.current
      try {
        session ??= await this.register(null)
        await this.inbox.waitForRoom(this.closeController.signal)
        if (this.closeController.signal.aborted) break
        await this.poll(session)
        this.failures = 0
        if (this.currentState !== 'live') this.setState('live')
      } catch (err) {
        if (this.closeController.signal.aborted) break
        const error = toClientError(err)
        if (error.statusCode === 409) {
          this.inbox.emit('superseded', { error })
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
        } else if (error.code === ('LONGPOLL_BAD_CURSOR' satisfies ErrorCode) && session !== null && this.current === session) {
          // The server no longer knows this cursor: poll from its position for the session.
          session.cursor = null
        } else if (error.code === 'LONGPOLL_REGISTER_REFUSED') {
          this.inbox.emit('error', error)
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
    this.inbox.emit('retrying', { attempt: this.failures, delayMs, error })
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
    const body: RegisterBody = { rooms: [...this.rooms] }
    if (this.profile !== null) body.profile = this.profile
    let res
    try {
      res = await this.transport.register(body, extra)
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
    this.inbox.emit('session', { id: session.id, previousId: previous })
    return session
  }

  private async poll (session: ChatSession): Promise<void> {
    // After a failure, the first poll asks for an answer at once (wait=0): a held poll says
    // nothing until it is answered, and the client should know it is live again right away.
    const wait = this.currentState === 'retrying' ? 0 : this.opts.wait
    const holdMs = wait === undefined ? this.pollTimeoutMs : Math.min(wait, this.pollTimeoutMs)
    const res = await this.transport.poll(session.token, { cursor: session.cursor, wait, holdMs })
    if (this.current !== session) return
    session.cursor = res.cursor
    if (res.missed > 0) this.inbox.emit('missed', { count: res.missed })
    for (const message of res.messages) {
      if (this.recent.add(message.id)) this.inbox.deliver(message as ChatMessage<T, P>)
    }
  }

  /** An authenticated request; on 401 registers again and retries once. */
  private async authed<R> (call: (token: string) => Promise<R>): Promise<R> {
    if (this.reason !== null) throw new ChatClientError('The client is closed', 'LONGPOLL_CLIENT_CLOSED')
    let session = this.current ?? await this.register(null)
    try {
      return await call(session.token)
    } catch (err) {
      if (!(err instanceof ChatClientError) || err.statusCode !== 401 || this.reason !== null) throw err
      if (this.current === session) this.current = null
      session = await this.register(session)
      this.backoff?.cancel()
      return await call(session.token)
    }
  }

  private setState (state: ChatState, error?: ChatClientError): void {
    const previous = this.currentState
    if (previous === state || previous === 'closed') return
    this.currentState = state
    const event: ChatClientEvents<T, P>['state'] = { state, previous }
    if (state === 'closed' && this.reason !== null) event.reason = this.reason
    if (error !== undefined) event.error = error
    this.inbox.emit('state', event)
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
