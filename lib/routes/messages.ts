/**
 * `POST /messages` (PROTOCOL.md). Checks, in the protocol's order: the token (401) and the rate
 * limit (429; counted in the same store call, and given back with `store.refund` when the send
 * is refused later) · the body (400: fields, one target at most, depth) · size (413) · the target
 * (403 NOT_A_MEMBER, 404 NO_SUCH_SESSION) · `authorize` (403 FORBIDDEN) · `onMessage` (400) ·
 * publish.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { AuthorizeAction, IncomingMessage } from '../../types/index.js'
import { hookSession, thrownField } from '../authorize.js'
import type { Addressing } from '../delivery.js'
import { BadMessageError, MessageTooLargeError, NoSuchSessionError, NotAMemberError } from '../errors.js'
import { schemas } from '../schemas.js'
import type { LogTarget } from '../stores/store.js'
import { jsonBytes, nestedDeeperThan } from '../util.js'
import { authenticated, rateCheck, sessionOf, type RouteContext } from './common.js'

const MAX_DEPTH = 32

/** What an `onMessage` hook threw, as the answer: its own 4xx when it has a string `code`, else 400. */
function refusal (thrown: unknown, request: FastifyRequest): Error {
  const e = thrown as { statusCode?: unknown, code?: unknown } | null
  if (thrown instanceof Error && typeof e?.statusCode === 'number' && Number.isInteger(e.statusCode) &&
      e.statusCode >= 400 && e.statusCode < 500 && typeof e.code === 'string') return thrown
  request.log.warn(thrownField(thrown), 'long-poll onMessage threw: message refused')
  return new BadMessageError('message refused')
}

export function messageRoutes (ctx: RouteContext) {
  const { core, store, opts } = ctx
  const rate = rateCheck('messages', opts.rateLimit)
  const bodyLimit = Math.max(65_536, opts.maxMessageBytes * 8 + 4096)
  const lookupTo = ctx.authorize !== null || opts.onMessage !== undefined

  /** onResponse: a send that was counted and then refused gives its slot back (only accepted sends count). */
  async function refund (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const sender = sessionOf(request)
    if (rate === null || sender === undefined || reply.statusCode === 202) return
    try {
      await store.refund(sender.id, 'messages', Date.now())
    } catch (err) {
      request.log.warn({ err }, 'long-poll store: refund failed')
    }
  }

  return async function messageRoutesPlugin (fastify: FastifyInstance): Promise<void> {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>()

    app.post('/messages', {
      schema: schemas.messages,
      bodyLimit,
      onRequest: authenticated(ctx, rate, 'messages'),
      onResponse: refund
    }, async (request, reply) => {
      const sender = sessionOf(request)
      const { room, to, toUser } = request.body
      let { data } = request.body
      if ((room !== undefined ? 1 : 0) + (to !== undefined ? 1 : 0) + (toUser !== undefined ? 1 : 0) > 1) {
        throw new BadMessageError('a message takes at most one of room, to and toUser')
      }
      if (data === undefined) throw new BadMessageError('data is required')
      if (nestedDeeperThan(data, MAX_DEPTH)) throw new BadMessageError('data is nested deeper than 32 levels')
      let dataJson = JSON.stringify(data)
      if (jsonBytes(dataJson) > opts.maxMessageBytes) throw new MessageTooLargeError(opts.maxMessageBytes)

      let target: LogTarget
      let addressing: Addressing | undefined
      let action: AuthorizeAction
      if (room !== undefined) {
        if (!sender.rooms.includes(room)) throw new NotAMemberError(room)
        target = { kind: 'room', room }
        action = { kind: 'sendRoom', room, data }
      } else if (toUser !== undefined) {
        const found = await core.call(() => store.lookup(toUser, Date.now()))
        if (found === null) throw new NoSuchSessionError()
        // The person's inbox; a session without a user is a person of its own.
        target = found.user !== null ? { kind: 'user', user: found.user } : { kind: 'session', id: toUser }
        addressing = { to: toUser, toUser: true }
        action = { kind: 'sendUser', to: toUser, user: found.user, data }
      } else if (to !== undefined) {
        // Without hooks the publish tells an unknown session (0 recipients); with them, 404 comes first.
        if (lookupTo && await core.call(() => store.lookup(to, Date.now())) === null) throw new NoSuchSessionError()
        target = { kind: 'session', id: to }
        action = { kind: 'sendSession', to, data }
      } else {
        target = { kind: 'all' }
        action = { kind: 'broadcast', data }
      }
      if (ctx.authorize !== null) await ctx.authorize(hookSession(sender), action, request)

      if (opts.onMessage !== undefined) {
        const incoming: IncomingMessage = {
          from: sender.id,
          profile: sender.profile,
          user: sender.user,
          context: sender.context ?? null,
          room: room ?? null,
          to: to ?? null,
          toUser: toUser ?? null,
          data
        }
        let verdict
        try {
          verdict = await opts.onMessage(incoming, request)
        } catch (thrown) {
          throw refusal(thrown, request)
        }
        if (verdict === false) throw new BadMessageError('message refused')
        if (typeof verdict === 'object' && verdict !== null && 'data' in verdict) {
          data = verdict.data
          let json: string | undefined
          try {
            json = JSON.stringify(data)
          } catch {
            json = undefined
          }
          if (json === undefined) {
            request.log.warn('long-poll onMessage returned data that is not JSON-serializable: message refused')
            throw new BadMessageError('message refused')
          }
          dataJson = json
        }
      }

      const sent = await core.publish('message', sender.id, target, dataJson, addressing)
      if (sent.recipients === 0 && (to !== undefined || toUser !== undefined)) throw new NoSuchSessionError()
      return reply.code(202).send({ id: sent.id, ts: sent.ts })
    })
  }
}
