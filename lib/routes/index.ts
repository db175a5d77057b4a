/**
 * The routes of PROTOCOL.md, registered under the plugin's prefix: register and end a session
 * (register.ts), poll (poll.ts), send (messages.ts), rooms (rooms.ts). What they share is in
 * common.ts.
 */
import type { FastifyInstance } from 'fastify'
import { messageRoutes } from './messages.js'
import { pollRoutes } from './poll.js'
import { registerRoutes } from './register.js'
import { roomRoutes } from './rooms.js'
import { validatorCompiler, type RouteContext } from './common.js'

export type { RouteContext } from './common.js'

export function routes (ctx: RouteContext) {
  return async function longPollRoutes (fastify: FastifyInstance): Promise<void> {
    fastify.setValidatorCompiler(validatorCompiler)

    // A callback hook, not an async one: it runs on every response, held polls included.
    fastify.addHook('onSend', (_request, reply, payload, done) => {
      reply.header('cache-control', 'no-store')
      // Every 503 (store unavailable, shutting down, sessions full) and 429 tells the client when to retry.
      if ((reply.statusCode === 503 || reply.statusCode === 429) && !reply.hasHeader('retry-after')) reply.header('retry-after', '1')
      done(null, payload)
    })

    await fastify.register(registerRoutes(ctx))
    await fastify.register(pollRoutes(ctx))
    await fastify.register(messageRoutes(ctx))
    await fastify.register(roomRoutes(ctx))
  }
}
