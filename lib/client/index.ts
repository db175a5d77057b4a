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
 * The files: this one holds the public methods; core.ts the session and the poll loop (state,
 * retries, registering again, storage, the tab group's leader and follower); http.ts the requests (one method per route, timeouts, error mapping); inbox.ts the consumers
 * (events, async iteration, backpressure); queue.ts small data structures; types.ts the public
 * types and `ChatClientError`; storage.ts what `persist` keeps; tabs.ts and batches.ts the tab
 * group of `shared` (leader election, handover, order of the shared poll responses).
 */
import type { MessageBody } from '../wire.js'
import { ChatCore } from './core.js'
import type { Listener } from './inbox.js'
import { pageLifecycle } from './queue.js'
import {
  ChatClientError, type ChatClientEvents, type ChatClientOptions, type ChatEventName, type ChatMember,
  type ChatMessage, type ChatRole, type ChatSession, type ChatState, type CloseOptions, type CloseReason,
  type HistoryOptions, type HistoryPage, type JoinOptions, type MembersPage, type MembersPageOptions,
  type Profile, type SendResult, type SendTarget
} from './types.js'

export * from './types.js'

/** The most member pages `members()` reads (then it stops: a bigger room needs `membersPage`). */
export const MEMBER_PAGES = 10

export class ChatClient<T = unknown, P extends Profile = Profile> extends ChatCore<T, P> implements AsyncIterable<ChatMessage<T, P>> {
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

  /**
   * Sends `data` to a room, to one session (`to`: its id), to the person behind a session
   * (`toUser`: a session id; every live session of its user), or with no target to every session.
   */
  async send (data: T, target?: SendTarget): Promise<SendResult> {
    const body: MessageBody = { data }
    if (target?.room !== undefined) body.room = target.room
    if (target?.to !== undefined) body.to = target.to
    if (target?.toUser !== undefined) body.toUser = target.toUser
    // A 401 means the server did not take the message: sending again after registering is safe.
    return await this.authed(token => this.transport.send(token, body))
  }

  /**
   * Joins a room (a no-op for a room the session is in). With `{ history: n }` it resolves with
   * up to `n` of the room's most recent messages accepted before the join, oldest first (`[]`
   * when the server keeps no history); what comes after the join arrives as `message` events.
   * For a room the session was in already, some of them may have been handed over as events
   * too: tell them apart by `id`.
   */
  join (room: string): Promise<void>
  join (room: string, options: JoinOptions): Promise<Array<ChatMessage<T, P>>>
  async join (room: string, options?: JoinOptions): Promise<void | Array<ChatMessage<T, P>>> {
    const history = options?.history
    const res = await this.authed(token => this.transport.join(token, room, history))
    this.rooms.add(room)
    this.roomsChanged()
    if (options !== undefined) return (res?.messages ?? []) as Array<ChatMessage<T, P>>
  }

  /** Leaves a room (a no-op for a room the session is not in). */
  async leave (room: string): Promise<void> {
    await this.authed(token => this.transport.leave(token, room))
    this.rooms.delete(room)
    this.roomsChanged()
  }

  /**
   * The room's live members, in the order they joined (the session must be one): every page,
   * up to `MEMBER_PAGES` (10) of them, so at most 1000 members with the server's default page
   * size. For bigger rooms use `membersPage`. Each page counts against the server's page rate limit.
   */
  async members (room: string): Promise<Array<ChatMember<P>>> {
    const seen = new Set<string>()
    const all: Array<ChatMember<P>> = []
    let after: string | undefined
    for (let i = 0; i < MEMBER_PAGES; i++) {
      const page = await this.membersPage(room, after === undefined ? {} : { after })
      // A member who left and joined again between two pages would come twice.
      for (const member of page.members) {
        if (seen.has(member.id)) continue
        seen.add(member.id)
        all.push(member)
      }
      if (page.next === null) break
      after = page.next
    }
    return all
  }

  /** One page of the room's live members: `{ members, next }`; ask for the next with `{ after: next }` (null: the last page). */
  async membersPage (room: string, options: MembersPageOptions = {}): Promise<MembersPage<P>> {
    const res = await this.authed(token => this.transport.members(token, room, options))
    return { members: res.members as Array<ChatMember<P>>, next: res.next }
  }

  /**
   * A page of the room's history (the session must be a member): its most recent messages, or
   * with `before` (a `next`) those before, oldest first, `join` and `leave` included; `next`
   * pages further back (null: nothing older). Empty when the server keeps no history.
   */
  async history (room: string, options: HistoryOptions = {}): Promise<HistoryPage<T, P>> {
    const res = await this.authed(token => this.transport.history(token, room, options))
    return { messages: res.messages as Array<ChatMessage<T, P>>, next: res.next }
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

  /* ---------------------------------------------------------------------------------------- */

  /** `keep`: leave the session as it is; `told`: another tab of the group ended it. */
  protected async shutdown (reason: CloseReason, error?: ChatClientError, keep = false, told = false): Promise<void> {
    if (this.reason === null) this.reason = reason
    this.closeController.abort()
    this.backoff?.cancel()
    this.inbox.stopWaiting()
    pageLifecycle(false, { online: this.onOnline, hide: this.onHide, show: this.onShow })
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
