/**
 * `app.longPoll`: what the application itself can do (PROTOCOL.md, "Plugin options the protocol
 * names"). Nothing here asks `authorize` (the server is the authority); join, leave and ends
 * send the same presence notices as the routes, exactly once (the store says who changed what).
 */
import type { HistoryPage, LongPollDecorator } from '../types/index.js'
import type { DeliveryCore } from './delivery.js'
import { NoSuchSessionError, TooManyRoomsError } from './errors.js'
import type { HeldPolls } from './held-poll.js'
import type { ResolvedOptions } from './options.js'
import type { Member, Page } from './stores/store.js'
import { isPageCursor, isUser, ROOM_REGEX } from './util.js'
import type { Message } from './wire.js'

function checkRoom (room: unknown): asserts room is string {
  if (typeof room !== 'string' || !ROOM_REGEX.test(room)) throw new TypeError(`Invalid room name: ${JSON.stringify(room)}`)
}

function checkUser (user: unknown): asserts user is string {
  if (!isUser(user)) throw new TypeError('Invalid user: expected a string of 1 to 256 characters')
}

function dataJson (data: unknown): string {
  const json = JSON.stringify(data)
  if (json === undefined) throw new TypeError('data must be JSON-serializable')
  return json
}

function yieldToIo (): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** Page size of the decorator's own loops over member lists. */
const MEMBER_PAGE = 1000

export function decorator (core: DeliveryCore, polls: HeldPolls, opts: ResolvedOptions): LongPollDecorator {
  const { store } = core

  return {
    async broadcast (data, options = {}) {
      const { room } = options
      if (room !== undefined) checkRoom(room)
      return await core.publish('message', null, room === undefined ? { kind: 'all' } : { kind: 'room', room }, dataJson(data))
    },

    async send (sessionId, data) {
      if (typeof sessionId !== 'string') throw new NoSuchSessionError()
      const { id, ts, recipients } = await core.publish('message', null, { kind: 'session', id: sessionId }, dataJson(data))
      if (recipients === 0) throw new NoSuchSessionError()
      return { id, ts }
    },

    async sendToUser (user, data) {
      checkUser(user)
      return await core.publish('message', null, { kind: 'user', user }, dataJson(data), { to: null, toUser: true })
    },

    async members (room) {
      if (room !== undefined) checkRoom(room)
      const out: Member[] = []
      let after: string | null = null
      for (;;) {
        const cursor: string | null = after
        const page: Page<Member> = await core.call(() => store.members(room ?? null, cursor, MEMBER_PAGE, Date.now()))
        for (const m of page.items) out.push(m)
        if (page.next === null || page.items.length === 0) return out
        after = page.next
        await yieldToIo()
      }
    },

    async join (sessionId, room) {
      checkRoom(room)
      if (typeof sessionId !== 'string') return false
      const result = await core.call(() => store.join(sessionId, room, Date.now()))
      if (result.result === 'too-many') throw new TooManyRoomsError(opts.maxRoomsPerSession)
      if (result.result !== 'joined') return false
      await core.joined(sessionId, JSON.stringify(await profileOf(sessionId)), room, result.size)
      return true
    },

    async leave (sessionId, room) {
      checkRoom(room)
      if (typeof sessionId !== 'string') return false
      const { left, size } = await core.call(() => store.leave(sessionId, room, Date.now()))
      if (!left) return false
      await core.left(sessionId, JSON.stringify(await profileOf(sessionId)), room, size)
      return true
    },

    async userSessions (user) {
      checkUser(user)
      return await core.call(() => store.userSessions(user, Date.now()))
    },

    async endSession (sessionId) {
      if (typeof sessionId !== 'string') return false
      const ended = await core.call(() => store.endSession(sessionId))
      if (ended === null) return false
      await core.announceEnd(ended, 'ended')
      return true
    },

    async endUser (user) {
      checkUser(user)
      const ended = await core.call(() => store.endUser(user))
      for (const session of ended) await core.announceEnd(session, 'ended')
      return ended.length
    },

    async history (room, options = {}) {
      checkRoom(room)
      const { before, limit = opts.historyPageSize } = options
      if (before !== undefined && (typeof before !== 'string' || !isPageCursor(before))) throw new TypeError('Invalid history cursor')
      if (!Number.isSafeInteger(limit) || limit < 1) throw new TypeError('history limit: expected a positive integer')
      if (opts.history === null) return { messages: [], next: null }
      const page = await core.call(() => store.history(room, before ?? null, limit, Date.now()))
      const result: HistoryPage = { messages: page.items.map((json) => JSON.parse(json) as Message), next: page.next }
      return result
    },

    async stats () {
      const stats = await core.call(() => store.stats())
      return { ...stats, heldPolls: polls.size }
    }
  }

  /**
   * The profile a presence notice of the server's join/leave carries. `lookup` of the store
   * interface v2 returns `{ id, user }`; a store that also returns `profile` is used as is, else
   * the profile is found among the user's sessions (an anonymous session's notice then has
   * `data: null`).
   */
  async function profileOf (sessionId: string): Promise<Record<string, unknown> | null> {
    const found = await core.call(() => store.lookup(sessionId, Date.now())) as LookedUp | null
    if (found === null) return null
    if (found.profile !== undefined) return found.profile
    if (found.user === null) return null
    const user = found.user
    const sessions = await core.call(() => store.userSessions(user, Date.now()))
    return sessions.find((m) => m.id === sessionId)?.profile ?? null
  }
}

interface LookedUp {
  id: string
  user: string | null
  profile?: Record<string, unknown> | null
}
