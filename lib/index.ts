/**
 * fastify-long-poll-chat: the plugin entry. Options (checked at register time), the
 * `app.longPoll` decorator, lifecycle hooks; the routes live in routes.ts, held polls and
 * publishing in delivery.ts, state in the store (stores/memory.ts by default).
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type {
  LongPollChatOptions, LongPollDecorator, MailboxStore, PublishTarget
} from '../types/index.js'
import { DeliveryCore } from './delivery.js'
import { InvalidOptionError, NoSuchSessionError } from './errors.js'
import { RateLimiter, routes, type ResolvedOptions } from './routes.js'
import { MemoryStore } from './stores/memory.js'
import { ROOM_REGEX } from './util.js'

export type * from '../types/index.js'
export { MemoryStore } from './stores/memory.js'
export * as errors from './errors.js'

const STORE_METHODS = [
  'init', 'createSession', 'authenticate', 'endSession', 'join', 'leave', 'members',
  'publish', 'read', 'beginPoll', 'endPoll', 'sweep', 'stats', 'close'
] as const

function positiveInteger (name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidOptionError(`${name}: expected a positive integer, got ${JSON.stringify(value)}`)
  }
  return value
}

function optionalFunction<T> (name: string, value: T | undefined): T | undefined {
  if (value !== undefined && typeof value !== 'function') throw new InvalidOptionError(`${name}: expected a function`)
  return value
}

/** Applies defaults and checks every option; throws LONGPOLL_INVALID_OPTION for a wrong one. */
export function resolveOptions (opts: LongPollChatOptions): ResolvedOptions & { prefix: string, store: MailboxStore | undefined } {
  if (opts === null || typeof opts !== 'object') throw new InvalidOptionError('options: expected an object')
  const { prefix = '', rateLimit = { max: 20, timeWindow: 1000 }, store } = opts
  if (typeof prefix !== 'string' || (prefix !== '' && !prefix.startsWith('/'))) {
    throw new InvalidOptionError('prefix: expected a string starting with /')
  }
  let limit: ResolvedOptions['rateLimit'] = false
  if (rateLimit !== false) {
    if (rateLimit === null || typeof rateLimit !== 'object') throw new InvalidOptionError('rateLimit: expected { max, timeWindow } or false')
    limit = {
      max: positiveInteger('rateLimit.max', rateLimit.max, 20),
      timeWindow: positiveInteger('rateLimit.timeWindow', rateLimit.timeWindow, 1000)
    }
  }
  if (store !== undefined) {
    for (const method of STORE_METHODS) {
      if (typeof (store as unknown as Record<string, unknown>)?.[method] !== 'function') {
        throw new InvalidOptionError(`store: expected a MailboxStore (missing ${method}())`)
      }
    }
  }
  return {
    prefix,
    store,
    pollTimeout: positiveInteger('pollTimeout', opts.pollTimeout, 25_000),
    messageTtl: positiveInteger('messageTtl', opts.messageTtl, 60_000),
    sessionTtl: positiveInteger('sessionTtl', opts.sessionTtl, 300_000),
    maxMailboxMessages: positiveInteger('maxMailboxMessages', opts.maxMailboxMessages, 1000),
    maxMessageBytes: positiveInteger('maxMessageBytes', opts.maxMessageBytes, 16_384),
    maxProfileBytes: positiveInteger('maxProfileBytes', opts.maxProfileBytes, 1024),
    maxSessions: positiveInteger('maxSessions', opts.maxSessions, 100_000),
    maxRoomsPerSession: positiveInteger('maxRoomsPerSession', opts.maxRoomsPerSession, 100),
    maxMessagesPerPoll: positiveInteger('maxMessagesPerPoll', opts.maxMessagesPerPoll, 500),
    sweepInterval: positiveInteger('sweepInterval', opts.sweepInterval, 1000),
    rateLimit: limit,
    authenticate: optionalFunction('authenticate', opts.authenticate),
    onMessage: optionalFunction('onMessage', opts.onMessage),
    onSessionEnd: optionalFunction('onSessionEnd', opts.onSessionEnd)
  }
}

function checkRoom (room: unknown): void {
  if (typeof room !== 'string' || !ROOM_REGEX.test(room)) throw new TypeError(`Invalid room name: ${JSON.stringify(room)}`)
}

function checkData (data: unknown): string {
  const json = JSON.stringify(data)
  if (json === undefined) throw new TypeError('data must be JSON-serializable')
  return json
}

const plugin: FastifyPluginAsync<LongPollChatOptions> = async function longPollChatPlugin (fastify: FastifyInstance, options) {
  const opts = resolveOptions(options)
  if (fastify.hasDecorator('longPoll')) throw new InvalidOptionError('longPoll: the plugin is already registered on this instance')

  const store = opts.store ?? new MemoryStore()
  const limiter = opts.rateLimit === false ? null : new RateLimiter(opts.rateLimit.max, opts.rateLimit.timeWindow)
  const core = new DeliveryCore(store, {
    maxMessagesPerPoll: opts.maxMessagesPerPoll,
    sweepInterval: opts.sweepInterval,
    onSessionEnd: opts.onSessionEnd
  }, fastify.log, (now) => limiter?.prune(now))

  await store.init({
    messageTtl: opts.messageTtl,
    sessionTtl: opts.sessionTtl,
    maxMailboxMessages: opts.maxMailboxMessages,
    maxSessions: opts.maxSessions,
    maxRoomsPerSession: opts.maxRoomsPerSession
  }, core.onStoreEvent)
  core.startSweeper()

  const longPoll: LongPollDecorator = {
    async broadcast (data, options = {}) {
      const { room } = options
      if (room !== undefined) checkRoom(room)
      const target: PublishTarget = room === undefined ? { kind: 'all' } : { kind: 'room', room }
      return core.publish('message', null, target, data, checkData(data))
    },
    async send (sessionId, data) {
      if (typeof sessionId !== 'string') throw new NoSuchSessionError()
      const { id, ts, recipients } = await core.publish('message', null, { kind: 'session', id: sessionId }, data, checkData(data))
      if (recipients === 0) throw new NoSuchSessionError()
      return { id, ts }
    },
    async members (room) {
      if (room !== undefined) checkRoom(room)
      return core.call(store.members(room))
    },
    async stats () {
      const stats = await core.call(store.stats())
      return { ...stats, heldPolls: core.held.size }
    },
    async endSession (sessionId) {
      const ended = await core.call(store.endSession(sessionId))
      if (ended === null) return false
      await core.announceEnd(ended, 'ended')
      return true
    }
  }
  fastify.decorate('longPoll', longPoll)

  fastify.addHook('preClose', async () => { core.shutdown() })
  fastify.addHook('onClose', async () => { await core.close() })

  await fastify.register(routes(core, opts, limiter), { prefix: opts.prefix })
}

/** The plugin: `app.register(longPollChat, { prefix: '/chat' })`. */
export const longPollChat = fp(plugin, { fastify: '5.x', name: 'fastify-long-poll-chat' })
export default longPollChat
