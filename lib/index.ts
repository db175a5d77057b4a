/**
 * fastify-long-poll-chat: the plugin entry. Options are checked at register time (options.ts);
 * the store (stores/memory/ by default) is initialised with the delivery core's event listener;
 * `app.longPoll` is decorator.ts; the routes live in routes/, publishing and the sweep in
 * delivery.ts, held polls in held-poll.ts, the `authorize` hook runner in authorize.ts.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type { LongPollChatOptions } from '../types/index.js'
import { authorizer } from './authorize.js'
import { decorator } from './decorator.js'
import { DeliveryCore } from './delivery.js'
import { InvalidOptionError } from './errors.js'
import { HeldPolls } from './held-poll.js'
import { resolveOptions } from './options.js'
import { routes } from './routes/index.js'
import { MemoryStore } from './stores/memory/index.js'

export type * from '../types/index.js'
export { MemoryStore } from './stores/memory/index.js'
export { resolveOptions } from './options.js'
export * as errors from './errors.js'

const plugin: FastifyPluginAsync<LongPollChatOptions> = async function longPollChatPlugin (fastify: FastifyInstance, options) {
  const opts = resolveOptions(options)
  if (fastify.hasDecorator('longPoll')) throw new InvalidOptionError('longPoll: the plugin is already registered on this instance')

  const store = opts.store ?? new MemoryStore()
  const core = new DeliveryCore(store, opts, fastify.log)
  const polls = new HeldPolls(store, opts, fastify.log)

  await store.init({
    messageTtl: opts.messageTtl,
    sessionTtl: opts.sessionTtl,
    maxMailboxMessages: opts.maxMailboxMessages,
    maxSessions: opts.maxSessions,
    maxRoomsPerSession: opts.maxRoomsPerSession,
    maxSessionsPerUser: opts.maxSessionsPerUser,
    history: opts.history
  }, polls.onStoreEvent)
  core.startSweeper()

  fastify.decorate('longPoll', decorator(core, polls, opts))

  fastify.addHook('preClose', async () => { polls.shutdown() })
  fastify.addHook('onClose', async () => { await core.close() })

  await fastify.register(routes({ store, core, polls, opts, authorize: authorizer(opts, fastify.log) }), { prefix: opts.prefix })
}

/** The plugin: `app.register(longPollChat, { prefix: '/chat' })`. */
export const longPollChat = fp(plugin, { fastify: '5.x', name: 'fastify-long-poll-chat' })
export default longPollChat
