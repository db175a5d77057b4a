/**
 * The session and the poll loop of the client (index.ts adds the public methods on top): it
 * registers (again after a 401), polls with its cursor, backs off, hands each new message to the
 * inbox once, keeps the session in storage (`persist`), and in a tab group (`shared`) either polls
 * for the group (leader) or takes the leader's batches (follower).
 */
import type { ErrorCode, RegisterBody } from '../wire.js'
import { toClientError, Transport } from './http.js'
import { Inbox } from './inbox.js'
import { absolute, pageLifecycle, RecentIds, sleep, type Sleep } from './queue.js'
import { Progress, SessionStore } from './storage.js'
import { TabGroup, type Batch, type TabHost, type View } from './tabs.js'
import {
  ChatClientError, type ChatClientEvents, type ChatClientOptions, type ChatMessage, type ChatSession,
  type ChatState, type CloseReason, type Profile
} from './types.js'

export abstract class ChatCore<T, P extends Profile> {
  protected readonly transport: Transport
  protected readonly profile: P | null
  protected rooms: Set<string>
  protected readonly opts: ChatClientOptions<P>
  protected readonly retryMin: number
  protected readonly retryMax: number
  protected readonly recent: RecentIds
  protected readonly inbox: Inbox<T, P>

  protected current: ChatSession | null = null
  /** The id of the last session this client had, for the `session` event's `previousId`. */
  protected lastId: string | null = null
  protected pollTimeoutMs = 25_000
  protected registering: Promise<ChatSession> | null = null
  protected currentState: ChatState = 'connecting'
  protected reason: CloseReason | null = null
  protected failures = 0
  protected readonly closeController = new AbortController()
  protected backoff: Sleep | null = null
  protected closing: Promise<void> | null = null
  protected readonly loop: Promise<void>
  protected readonly readyPromise: Promise<void>
  protected resolveReady: () => void = () => {}
  protected rejectReady: (err: Error) => void = () => {}
  protected readonly onOnline = (): void => { this.reconnect() }
  /** `persist`: where the session is kept, and which poll responses the application took. */
  protected readonly store: SessionStore | null
  protected readonly progress: Progress
  /** `shared`: the tab group (null when polling alone). */
  protected readonly group: TabGroup | null = null
  /** Aborts the poll in flight (a tab of the group found the session expired). */
  protected pollAbort: AbortController | null = null
  /** Followers waiting for the group's session. */
  protected readonly sessionWaiters = new Set<() => void>()

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
    const name = options.name ?? 'longpoll-chat:' + absolute(options.url)
    const shared = options.shared === true ? {} : (options.shared === false ? undefined : options.shared)
    const perTab = shared === undefined || !TabGroup.supported(shared)
    this.store = SessionStore.create(options.persist, name, perTab)
    const saved = this.store?.load() ?? null
    // Alone, a kept session that a live page marked as its own is a duplicated tab's: not ours to poll.
    const resumed = saved !== null && !(perTab && saved.open) ? saved : null
    if (resumed !== null) {
      this.current = { id: resumed.id, token: resumed.token, cursor: resumed.cursor }
      this.rooms = new Set(resumed.rooms)
      for (const id of resumed.ids) this.recent.add(id)
    } else if (options.session !== undefined) {
      this.current = { ...options.session }
    }
    this.lastId = this.current?.id ?? null
    this.progress = new Progress({ cursor: this.current?.cursor ?? null, seq: resumed?.seq ?? 0, total: resumed?.total ?? 0 }, resumed?.ids ?? [])
    this.readyPromise = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve
      this.rejectReady = reject
    })
    // Nobody has to await ready(): never report it as an unhandled rejection.
    this.readyPromise.catch(() => {})
    pageLifecycle(true, { online: this.onOnline, hide: this.onHide, show: this.onShow })
    if (this.current !== null) this.resolveReady()
    if (shared !== undefined && !perTab) this.group = TabGroup.create(name, shared, this.host(), resumed === null ? null : { seq: resumed.seq, total: resumed.total })
    this.loop = this.group === null ? this.run(this.closeController.signal) : Promise.resolve()
    this.save()
  }

  protected readonly onHide = (): void => this.save(false)
  protected readonly onShow = (): void => this.save(true)

  /** Cuts the current wait short and tries at once (for example when the network is back). */
  reconnect (): void {
    this.failures = 0
    this.backoff?.cancel()
  }

  /** Stops the client (index.ts): `keep` leaves the session as it is; `told`: another tab of the group ended it. */
  protected abstract shutdown (reason: CloseReason, error?: ChatClientError, keep?: boolean, told?: boolean): Promise<void>

  /** The poll loop, until `signal` aborts: the client closes, or (in a tab group) this tab stops leading. */
  protected async run (signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let session: ChatSession | null = this.current
      try {
        session ??= await this.register(null)
        // With `persist`, a cursor is acknowledged (sent) only once the application took what came before it.
        await this.inbox.waitForRoom(signal, this.store === null ? undefined : 1)
        if (signal.aborted) break
        this.save()
        await this.poll(session, signal)
        this.failures = 0
        if (this.currentState !== 'live') this.setState('live')
      } catch (err) {
        if (signal.aborted) break
        const error = toClientError(err)
        if (error.statusCode === 409 && this.group !== null) {
          // A tab that had lost the lead (frozen, then woken) polled once more: poll again.
        } else if (error.statusCode === 409) {
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
  protected async retryAfter (error: ChatClientError): Promise<void> {
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
  protected async register (stale: ChatSession | null): Promise<ChatSession> {
    if (this.current !== null && this.current !== stale) return this.current
    this.registering ??= this.doRegister().finally(() => { this.registering = null })
    return await this.registering
  }

  protected async doRegister (): Promise<ChatSession> {
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
    this.useSession(session)
    if (this.currentState !== 'closed') this.setState('live')
    return session
  }

  /** A session this tab did not have: registered here, or learned from the tab group. */
  protected useSession (session: ChatSession): void {
    const previous = this.lastId
    this.lastId = session.id
    this.current = session
    this.progress.reset({ cursor: session.cursor, seq: this.group?.position.seq ?? 0, total: this.group?.position.total ?? 0 })
    this.resolveReady()
    for (const wake of this.sessionWaiters) wake()
    this.save()
    this.group?.announce()
    if (previous !== session.id) this.inbox.emit('session', { id: session.id, previousId: previous })
  }

  protected async poll (session: ChatSession, signal: AbortSignal): Promise<void> {
    // After a failure, the first poll asks for an answer at once (wait=0): a held poll says
    // nothing until it is answered, and the client should know it is live again right away.
    const wait = this.currentState === 'retrying' ? 0 : this.opts.wait
    const holdMs = wait === undefined ? this.pollTimeoutMs : Math.min(wait, this.pollTimeoutMs)
    this.pollAbort = new AbortController()
    const abort = (): void => this.pollAbort?.abort()
    signal.addEventListener('abort', abort)
    let res
    try {
      res = await this.transport.poll(session.token, { cursor: session.cursor, wait, holdMs }, this.pollAbort.signal)
    } catch (err) {
      // Aborted by the group (the session expired): register again; by `signal`: the caller stops.
      if (this.pollAbort.signal.aborted && this.current !== session) return
      throw err
    } finally {
      signal.removeEventListener('abort', abort)
    }
    if (this.current !== session || signal.aborted) return
    const batch = { session: { id: session.id, token: session.token }, cursor: res.cursor, messages: res.messages, missed: res.missed }
    if (this.group === null) this.take({ ...batch, seq: 0, total: 0 }, false)
    else if (res.messages.length > 0 || res.missed > 0 || res.cursor !== session.cursor) this.group.publish(batch)
  }

  /** A poll response (this tab's, or one of its group's batches): hands its new messages over. */
  protected take (batch: Batch, late: boolean): void {
    if (this.reason !== null) return
    if (!late) {
      if (this.current?.id !== batch.session.id) this.useSession({ ...batch.session, cursor: batch.cursor })
      ;(this.current as ChatSession).cursor = batch.cursor
      if (batch.missed > 0) this.inbox.emit('missed', { count: batch.missed })
    }
    for (const message of batch.messages) {
      if (!this.recent.add(message.id)) continue
      // What was taken is only tracked to be saved (`persist`): without a store nothing reads it.
      if (this.store !== null) this.progress.deliver(message.id)
      this.inbox.deliver(message as ChatMessage<T, P>)
    }
    if (!late && this.store !== null) this.progress.mark({ cursor: batch.cursor, seq: batch.seq, total: batch.total })
    this.save()
  }

  /** `persist`: keeps the session and the position the application has taken. */
  protected save (open = true): void {
    const session = this.current
    if (this.store === null || session === null) return
    const backlog = this.inbox.backlog()
    const taken = this.progress.position(backlog)
    this.store.save({ ...session, ...taken, rooms: [...this.rooms], ids: this.progress.takenIds(backlog), open })
  }

  protected roomsChanged (): void {
    this.save()
    this.group?.rooms([...this.rooms])
  }

  /** What the tab group needs of this client (tabs.ts). */
  protected host (): TabHost {
    return {
      lead: async (signal) => {
        this.inbox.emit('role', { role: 'leader' })
        try {
          await this.run(signal)
        } finally {
          if (this.reason === null) this.inbox.emit('role', { role: 'follower' })
        }
      },
      view: () => ({
        session: this.current === null ? null : { id: this.current.id, token: this.current.token },
        cursor: this.current?.cursor ?? null,
        rooms: [...this.rooms],
        state: this.currentState
      }),
      batch: (batch, late) => this.take(batch, late),
      adopt: (view: View) => {
        if (this.reason !== null) return
        this.rooms = new Set(view.rooms)
        if (view.session !== null) {
          if (this.current?.id !== view.session.id) this.useSession({ ...view.session, cursor: view.cursor })
          ;(this.current as ChatSession).cursor = view.cursor
          if (this.store !== null) this.progress.mark({ cursor: view.cursor, seq: view.seq, total: view.total })
        }
        if (this.group?.isLeader === false && view.state !== 'closed') this.setState(view.state)
        this.save()
      },
      lost: (count) => { if (count > 0) this.inbox.emit('missed', { count }) },
      rooms: (rooms) => {
        this.rooms = new Set(rooms)
        this.save()
      },
      end: (reason, message) => {
        const error = new ChatClientError(message, reason === 'refused' ? 'LONGPOLL_REGISTER_REFUSED' : 'LONGPOLL_CLIENT_CLOSED')
        this.closing ??= this.shutdown(reason, reason === 'refused' ? error : undefined, false, true)
      },
      expired: (id) => {
        if (this.current?.id !== id) {
          this.group?.announce()
          return
        }
        this.current = null
        this.pollAbort?.abort()
        this.reconnect()
      }
    }
  }

  /** Follower: the group's session (another than `stale`), once the leading tab has one. */
  protected async groupSession (stale: ChatSession | null): Promise<ChatSession> {
    if (stale !== null) this.group?.expired(stale.id)
    for (let i = 0; i < 2; i++) {
      const current = this.current
      if (current !== null && current.id !== stale?.id) return current
      if (this.reason !== null) break
      const wait = sleep(this.opts.requestTimeout ?? 15_000)
      this.sessionWaiters.add(wait.cancel)
      await wait.promise
      this.sessionWaiters.delete(wait.cancel)
    }
    if (this.reason !== null) throw new ChatClientError('The client is closed', 'LONGPOLL_CLIENT_CLOSED')
    throw new ChatClientError('No session from the leading tab', 'LONGPOLL_CLIENT_TIMEOUT')
  }

  /** An authenticated request; on 401 registers again and retries once. */
  protected async authed<R> (call: (token: string) => Promise<R>): Promise<R> {
    if (this.reason !== null) throw new ChatClientError('The client is closed', 'LONGPOLL_CLIENT_CLOSED')
    const follower = (): boolean => this.group !== null && !this.group.isLeader
    let session = this.current ?? (follower() ? await this.groupSession(null) : await this.register(null))
    try {
      return await call(session.token)
    } catch (err) {
      if (!(err instanceof ChatClientError) || err.statusCode !== 401 || this.reason !== null) throw err
      if (follower()) return await call((await this.groupSession(session)).token)
      if (this.current === session) this.current = null
      session = await this.register(session)
      this.backoff?.cancel()
      return await call(session.token)
    }
  }

  protected setState (state: ChatState, error?: ChatClientError): void {
    const previous = this.currentState
    if (previous === state || previous === 'closed') return
    this.currentState = state
    const event: ChatClientEvents<T, P>['state'] = { state, previous }
    if (state === 'closed' && this.reason !== null) event.reason = this.reason
    if (error !== undefined) event.error = error
    this.inbox.emit('state', event)
    this.group?.announce()
  }
}
