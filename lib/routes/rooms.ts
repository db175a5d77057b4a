/**
 * The room routes (PROTOCOL.md): `POST /rooms/:room/join?history=N`, `POST /rooms/:room/leave`
 * (both under the joins rate limit), `GET /rooms/:room/members?limit&after` and
 * `GET /rooms/:room/history?limit&before` (both under the pages rate limit). The rate limits
 * are counted in the store in the same call as the token check.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { hookSession } from '../authorize.js'
import { BadCursorError, NotAMemberError, QueryValidationError, TooManyRoomsError, UnknownSessionError } from '../errors.js'
import { schemas } from '../schemas.js'
import type { Page } from '../stores/store.js'
import { isPageCursor } from '../util.js'
import { authenticated, rateCheck, sessionOf, type RouteContext } from './common.js'

/** A page of serialized messages as the wire's `{ messages, next }`, without parsing them again. */
export function historyPayload (page: Page<string>): string {
  return '{"messages":[' + page.items.join(',') + '],"next":' + JSON.stringify(page.next) + '}'
}

const EMPTY_HISTORY = '{"messages":[],"next":null}'

/** A page size from the query: absent → the default (the maximum); above the maximum → 400. */
function pageLimit (value: string | undefined, max: number, name: string): number {
  if (value === undefined) return max
  const n = Number(value)
  if (n > max) throw new QueryValidationError(`querystring/${name} must be at most ${max}`)
  return n
}

function pageCursor (value: string | undefined): string | null {
  if (value === undefined) return null
  if (!isPageCursor(value)) throw new BadCursorError()
  return value
}

function sendJson (reply: FastifyReply, payload: string): FastifyReply {
  return reply.code(200).type('application/json; charset=utf-8').send(payload)
}

export function roomRoutes (ctx: RouteContext) {
  const { core, store, opts } = ctx
  const joins = authenticated(ctx, rateCheck('joins', opts.joinRateLimit), 'joins and leaves')
  const pages = authenticated(ctx, rateCheck('pages', opts.pageRateLimit), 'member and history pages')

  return async function roomRoutesPlugin (fastify: FastifyInstance): Promise<void> {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>()

    app.post('/rooms/:room/join', { schema: schemas.join, onRequest: joins }, async (request, reply) => {
      const session = sessionOf(request)
      const { room } = request.params
      const history = request.query.history === undefined ? 0 : Number(request.query.history)
      if (history > opts.historyPageSize) throw new QueryValidationError(`querystring/history must be at most ${opts.historyPageSize}`)
      const member = session.rooms.includes(room)
      if (!member) {
        if (session.rooms.length >= opts.maxRoomsPerSession) throw new TooManyRoomsError(opts.maxRoomsPerSession)
        if (ctx.authorize !== null) await ctx.authorize(hookSession(session), { kind: 'join', room, via: 'route' }, request)
      }
      if (history > 0 && ctx.authorize !== null) await ctx.authorize(hookSession(session), { kind: 'history', room }, request)
      const withHistory = history > 0 && opts.history !== null ? history : undefined
      const result = await core.call(() => store.join(session.id, room, Date.now(), withHistory))
      if (result.result === 'no-session') throw new UnknownSessionError()
      if (result.result === 'too-many') throw new TooManyRoomsError(opts.maxRoomsPerSession)
      if (result.result === 'joined') await core.joined(session.id, JSON.stringify(session.profile), room, result.size)
      if (history === 0) return reply.code(204).send(null)
      const page = result.result === 'joined' || result.result === 'already' ? result.history : undefined
      return sendJson(reply, page === undefined ? EMPTY_HISTORY : historyPayload(page))
    })

    app.post('/rooms/:room/leave', { schema: schemas.leave, onRequest: joins }, async (request, reply) => {
      const session = sessionOf(request)
      const { room } = request.params
      const { left, size } = await core.call(() => store.leave(session.id, room, Date.now()))
      if (left) await core.left(session.id, JSON.stringify(session.profile), room, size)
      return reply.code(204).send(null)
    })

    app.get('/rooms/:room/members', { schema: schemas.members, onRequest: pages }, async (request) => {
      const session = sessionOf(request)
      const { room } = request.params
      const limit = pageLimit(request.query.limit, opts.membersPageSize, 'limit')
      const after = pageCursor(request.query.after)
      if (!session.rooms.includes(room)) throw new NotAMemberError(room)
      if (ctx.authorize !== null) await ctx.authorize(hookSession(session), { kind: 'members', room }, request)
      const page = await core.call(() => store.members(room, after, limit, Date.now()))
      return { members: page.items, next: page.next }
    })

    app.get('/rooms/:room/history', { schema: schemas.history, onRequest: pages }, async (request, reply) => {
      const session = sessionOf(request)
      const { room } = request.params
      const limit = pageLimit(request.query.limit, opts.historyPageSize, 'limit')
      const before = pageCursor(request.query.before)
      if (!session.rooms.includes(room)) throw new NotAMemberError(room)
      if (ctx.authorize !== null) await ctx.authorize(hookSession(session), { kind: 'history', room }, request)
      if (opts.history === null) return sendJson(reply, EMPTY_HISTORY)
      const page = await core.call(() => store.history(room, before, limit, Date.now()))
      return sendJson(reply, historyPayload(page))
    })
  }
}
