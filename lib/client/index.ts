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
 * With `persist` it keeps its session in the page's storage and resumes it on the next load; with
 * `shared` the tabs of an origin share one session and one held poll (one tab leads and polls,
 * the others receive its batches).
 *
 * The files: this one holds the session and the poll loop (state, retries, registering again);
 * http.ts the requests (one method per route, timeouts, error mapping); inbox.ts the consumers
 * (events, async iteration, backpressure); queue.ts small data structures; types.ts the public
 * types and `ChatClientError`; storage.ts what `persist` keeps; tabs.ts and batches.ts the tab
 * group of `shared` (leader election, handover, order of the shared poll responses).
 */
import type { ErrorCode, MessageBody, RegisterBody } from '../wire.js'
import { toClientError, Transport } from './http.js'
import { Inbox, type Listener } from './inbox.js'
import { RecentIds, sleep, type Sleep } from './queue.js'
import { Progress, SessionStore } from './storage.js'
import { TabGroup, type Batch, type TabHost, type View } from './tabs.js'
import {
  ChatClientError, type ChatClientEvents, type ChatClientOptions, type ChatEventName, type ChatMember,
  type ChatMessage, type ChatRole, type ChatSession, type ChatState, type CloseOptions, type CloseReason,
  type Profile, type SendResult, type SendTarget
} from './types.js'

export * from './types.js'

export class ChatClient<T = unknown, P extends Profile = Profile> implements AsyncIterable<ChatMessage<T, P>> {
  private readonly transport: Transport
  private readonly profile: P | null
  private rooms: Set<string>
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
  /** `persist`: where the session is kept, and which poll responses the application took. */
  private readonly store: SessionStore | null
  private readonly progress: Progress
  /** `shared`: the tab group (null when polling alone). */
  private readonly group: TabGroup | null = null
  /** Aborts the poll in flight (a tab of the group found the session expired). */
  private pollAbort: AbortController | null = null
  /** Followers waiting for the group's session. */
  private readonly sessionWaiters = new Set<() => void>()

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
    lifecycle(true, this.onOnline, this.onHide, this.onShow)
    if (this.current !== null) this.resolveReady()
    if (shared !== undefined && !perTab) this.group = TabGroup.create(name, shared, this.host(), resumed === null ? null : resumed.seq)
    this.loop = this.group === null ? this.run(this.closeController.signal) : Promise.resolve()
    this.save()
  }

  private readonly onHide = (): void => this.save(false)
  private readonly onShow = (): void => this.save(true)

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

  /** Whether this tab polls for itself, for its tab group, or receives from another tab. */
  get role (): ChatRole {
    if (this.group === null) return 'single'
    return this.group.isLeader ? 'leader' : 'follower'
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
    this.roomsChanged()
  }

  /** Leaves a room (a no-op for a room the session is not in). */
  async leave (room: string): Promise<void> {
    await this.authed(token => this.transport.leave(token, room))
    this.rooms.delete(room)
    this.roomsChanged()
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

  /**
   * Stops polling (aborting the held poll), ends the session on the server (in a tab group: for
   * every tab), forgets it in storage, and resolves when done. With `keepSession`, only stops:
   * the session stays on the server and in storage, and the other tabs of a group go on.
   */
  close (options?: CloseOptions): Promise<void> {
    this.closing ??= this.shutdown('closed', undefined, options?.keepSession === true)
    return this.closing
  }

  /* ---------------------------------------------------------------------------------------- */

  /** `keep`: leave the session as it is; `told`: another tab of the group ended it. */
  private async shutdown (reason: CloseReason, error?: ChatClientError, keep = false, told = false): Promise<void> {
    if (this.reason === null) this.reason = reason
    this.closeController.abort()
    this.backoff?.cancel()
    this.inbox.stopWaiting()
    lifecycle(false, this.onOnline, this.onHide, this.onShow)
    for (const wake of this.sessionWaiters) wake()
    const ends = !keep && !told && reason !== 'superseded'
    if (this.group !== null) {
      if (ends) this.group.end(reason, error?.message ?? 'The session was ended in another tab')
      await this.group.leave()
    }
    await this.loop
    if (this.registering !== null) await this.registering.catch(() => {})
    const session = this.current
    if (reason === 'closed' && ends && session !== null) await this.transport.endSession(session.token).catch(() => {})
    if (keep) this.save(false)
    else this.store?.clear()
    this.rejectReady(new ChatClientError('The client closed before it registered', 'LONGPOLL_CLIENT_CLOSED'))
    this.inbox.end()
    this.setState('closed', error)
  }

  /** The poll loop, until `signal` aborts: the client closes, or (in a tab group) this tab stops leading. */
  private async run (signal: AbortSignal): Promise<void> {
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
    this.useSession(session)
    if (this.currentState !== 'closed') this.setState('live')
    return session
  }

  /** A session this tab did not have: registered here, or learned from the tab group. */
  private useSession (session: ChatSession): void {
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

  private async poll (session: ChatSession, signal: AbortSignal): Promise<void> {
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
  private take (batch: Batch, late: boolean): void {
    if (this.reason !== null) return
    if (!late) {
      if (this.current?.id !== batch.session.id) this.useSession({ ...batch.session, cursor: batch.cursor })
      ;(this.current as ChatSession).cursor = batch.cursor
      if (batch.missed > 0) this.inbox.emit('missed', { count: batch.missed })
    }
    for (const message of batch.messages) {
      if (!this.recent.add(message.id)) continue
      this.progress.deliver(message.id)
      this.inbox.deliver(message as ChatMessage<T, P>)
    }
    if (!late) this.progress.mark({ cursor: batch.cursor, seq: batch.seq, total: batch.total })
    this.save()
  }

  /** `persist`: keeps the session and the position the application has taken. */
  private save (open = true): void {
    const session = this.current
    if (this.store === null || session === null) return
    const backlog = this.inbox.backlog()
    const taken = this.progress.position(backlog)
    this.store.save({ ...session, ...taken, rooms: [...this.rooms], ids: this.progress.takenIds(backlog), open })
  }

  private roomsChanged (): void {
    this.save()
    this.group?.rooms([...this.rooms])
  }

  /** What the tab group needs of this client (tabs.ts). */
  private host (): TabHost {
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
          this.progress.mark({ cursor: view.cursor, seq: view.seq, total: view.total })
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
  private async groupSession (stale: ChatSession | null): Promise<ChatSession> {
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
  private async authed<R> (call: (token: string) => Promise<R>): Promise<R> {
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

  private setState (state: ChatState, error?: ChatClientError): void {
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

/** The URL resolved against the page (for names that differ between two chats of one origin). */
function absolute (url: string): string {
  try {
    const base = (globalThis as { location?: { href?: string } }).location?.href
    return new URL(url, base).href
  } catch {
    return url
  }
}

interface Target { addEventListener?: (type: string, fn: () => void) => void, removeEventListener?: (type: string, fn: () => void) => void }

/** `online` (retry at once), and the page hiding and showing (keep the session's state). */
function lifecycle (add: boolean, online: () => void, hide: () => void, show: () => void): void {
  const win = globalThis as Target & { document?: Target }
  const method = add ? 'addEventListener' : 'removeEventListener'
  win[method]?.('online', online)
  win[method]?.('pagehide', hide)
  win[method]?.('pageshow', show)
  win.document?.[method]?.('freeze', hide)
  win.document?.[method]?.('resume', show)
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
