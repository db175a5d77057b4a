/**
 * `GET /poll` and `HEAD /poll` (PROTOCOL.md). The token and the query are checked here rather
 * than by Fastify's validation, so that a bad token is a 401 whatever the query says, and a good
 * poll costs one store call (`store.poll`: authenticate, read, hold). A malformed `cursor` or
 * `wait` with a token costs one `store.authenticate` to tell 401 from 400.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { BadCursorError, QueryValidationError, StoreUnavailableError, UnknownSessionError } from '../errors.js'
import { schemas } from '../schemas.js'
import { PollQuerySchema } from '../wire.js'
import { bearerToken, hashToken, isPromise, parseCursor } from '../util.js'
import { unknownSession, type RouteContext } from './common.js'

const query = TypeCompiler.Compile(PollQuerySchema)

interface ParsedPoll {
  tokenHash: string
  cursor: number | null
  /** The hold in ms (`wait` capped at pollTimeout). */
  holdMs: number
  /** A 400 to answer once the token is known to be good. */
  error: Error | null
}

export function pollRoutes (ctx: RouteContext) {
  const { polls, store, opts } = ctx

  function parse (request: FastifyRequest, reply: FastifyReply): ParsedPoll {
    const token = bearerToken(request.headers.authorization)
    if (token === null) unknownSession(reply)
    const q: unknown = request.query
    let error: Error | null = null
    let cursor: number | null = null
    let holdMs = opts.pollTimeout
    if (!query.Check(q)) {
      const first = query.Errors(q).First()
      // A cursor given twice (an array) is a malformed cursor; anything else is a bad query.
      error = first?.path === '/cursor'
        ? new BadCursorError()
        : new QueryValidationError(`querystring${first?.path ?? ''} ${first?.message ?? 'is invalid'}`)
    } else {
      cursor = parseCursor(q.cursor)
      if (Number.isNaN(cursor)) error = new BadCursorError()
      if (q.wait !== undefined) holdMs = Math.min(Number(q.wait), opts.pollTimeout)
    }
    return { tokenHash: hashToken(token), cursor, holdMs, error }
  }

  /** A bad query with a token: 401 when the token is bad too, else the 400. */
  function refuse (tokenHash: string, error: Error, reply: FastifyReply): void {
    const answer = (found: { ok: boolean }): void => {
      if (!found.ok) reply.header('www-authenticate', 'Bearer')
      reply.send(found.ok ? error : new UnknownSessionError())
    }
    const failed = (err: unknown): void => {
      reply.log.warn({ err }, 'long-poll store unavailable')
      reply.header('retry-after', '1').send(new StoreUnavailableError())
    }
    try {
      const found = store.authenticate(tokenHash, Date.now())
      if (isPromise(found)) found.then(answer, failed)
      else answer(found)
    } catch (err) {
      failed(err)
    }
  }

  return async function pollRoutesPlugin (fastify: FastifyInstance): Promise<void> {
    // Not async: the held polls answer through `reply` when the poll is over.
    fastify.get('/poll', { schema: schemas.poll, exposeHeadRoute: false }, (request, reply) => {
      const poll = parse(request, reply)
      if (poll.error !== null) return refuse(poll.tokenHash, poll.error, reply)
      polls.poll(poll.tokenHash, poll.cursor, poll.holdMs, reply)
    })

    fastify.head('/poll', { schema: schemas.pollHead }, (request, reply) => {
      const poll = parse(request, reply)
      if (poll.error !== null) return refuse(poll.tokenHash, poll.error, reply)
      polls.head(poll.tokenHash, poll.cursor, reply)
    })
  }
}
