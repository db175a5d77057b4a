/**
 * `POST /register` and `DELETE /session` (PROTOCOL.md). Register checks, in the protocol's
 * order: malformed JSON (Fastify, 400) · the app's `authenticate` (preValidation: the body is
 * parsed, not yet validated; 401) · the body (400) · profile depth (400) and size (413) · rooms
 * (403 TOO_MANY_ROOMS) · `authorize` for each room the body asks for (403 FORBIDDEN) · the
 * register rate limit (429), the user's session cap (403 TOO_MANY_SESSIONS) and `maxSessions`
 * (503), the last three in the store's `createSession` call.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { thrownField } from '../authorize.js'
import {
  BadMessageError, ProfileTooLargeError, SessionsFullError, TooManyRoomsError,
  TooManySessionsError, UnauthorizedError
} from '../errors.js'
import { schemas } from '../schemas.js'
import type { RateCheck } from '../stores/store.js'
import {
  hashToken, isUser, jsonBytes, nestedDeeperThan, newSessionId, newToken, ROOM_REGEX
} from '../util.js'
import { authenticated, rateCheck, rateLimited, sessionOf, type RouteContext } from './common.js'

const MAX_DEPTH = 32
const kAuth = Symbol('longPollAuthResult')

/** What `authenticate` decided, once checked. */
interface Identity {
  user: string | null
  /** undefined: the client's profile stands. */
  profile: Record<string, unknown> | null | undefined
  rooms: string[]
  context: unknown
}

type WithIdentity = FastifyRequest & { [kAuth]?: Identity }

const ANONYMOUS: Identity = { user: null, profile: undefined, rooms: [], context: null }

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/**
 * Checks what `authenticate` returned. A wrong shape is the application's bug: the reason
 * (never the value: it may hold secrets) is returned, and the registration is refused.
 */
function identity (result: unknown): Identity | string {
  if (result === true) return ANONYMOUS
  if (!isPlainObject(result)) return 'expected true, a falsy value or { user?, profile?, rooms?, context? }'
  const { user = null, profile, rooms = [], context = null } = result
  if (user !== null && !isUser(user)) return 'user: expected a string of 1 to 256 characters, or null'
  if (profile !== undefined && profile !== null && !isPlainObject(profile)) return 'profile: expected an object or null'
  if (!Array.isArray(rooms) || !rooms.every((room) => typeof room === 'string' && ROOM_REGEX.test(room))) {
    return 'rooms: expected an array of valid room names'
  }
  let json: string | undefined
  try {
    json = JSON.stringify(context)
  } catch {
    json = undefined
  }
  if (json === undefined) return 'context: expected a JSON-serializable value'
  return { user, profile: profile as Identity['profile'], rooms: [...new Set(rooms as string[])], context: JSON.parse(json) as unknown }
}

export function registerRoutes (ctx: RouteContext) {
  const { core, store, opts } = ctx
  const joinRate = rateCheck('joins', opts.joinRateLimit)
  const maxAskedRooms = Math.min(opts.maxRoomsPerSession, opts.joinRateLimit?.max ?? Infinity)
  const profileBodyLimit = Math.max(65_536, opts.maxProfileBytes * 8 + 65_536)

  /** preValidation of POST /register: the app's `authenticate` sees the parsed body. */
  async function gate (request: FastifyRequest): Promise<void> {
    if (request.body === undefined || request.body === null) request.body = {}
    const hook = opts.authenticate
    if (hook === undefined) return
    let result: unknown
    try {
      result = await hook(request)
    } catch (thrown) {
      request.log.info(thrownField(thrown), 'long-poll authenticate threw: registration refused')
      throw new UnauthorizedError()
    }
    if (!result) throw new UnauthorizedError() // any falsy value refuses
    const found = identity(result)
    if (typeof found === 'string') {
      request.log.error(`long-poll authenticate returned a wrong result (${found}): registration refused`)
      throw new UnauthorizedError()
    }
    (request as WithIdentity)[kAuth] = found
  }

  /** The register rate limit's key: `request.ip`, or the app's `key(request, user)` (null: unlimited). */
  function registerRate (request: FastifyRequest, user: string | null): (RateCheck & { key: string }) | undefined {
    const limit = opts.registerRateLimit
    if (limit === null) return undefined
    let key: unknown = request.ip
    if (limit.key !== undefined) {
      try {
        key = limit.key(request, user)
      } catch (thrown) {
        request.log.error(thrownField(thrown), 'long-poll registerRateLimit.key threw: request.ip is used')
        key = request.ip
      }
      if (key === null) return undefined
      if (typeof key !== 'string') {
        request.log.error('long-poll registerRateLimit.key returned neither a string nor null: request.ip is used')
        key = request.ip
      }
    }
    return { bucket: 'register', max: limit.max, window: limit.timeWindow, key: key as string }
  }

  return async function sessionRoutes (fastify: FastifyInstance): Promise<void> {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>()

    app.post('/register', {
      schema: schemas.register,
      bodyLimit: profileBodyLimit,
      preValidation: gate
    }, async (request, reply) => {
      const who = (request as WithIdentity)[kAuth] ?? ANONYMOUS
      const profile = who.profile !== undefined ? who.profile : request.body.profile ?? null
      if (profile !== null) {
        if (nestedDeeperThan(profile, MAX_DEPTH)) throw new BadMessageError('profile is nested too deeply')
        if (jsonBytes(JSON.stringify(profile)) > opts.maxProfileBytes) throw new ProfileTooLargeError(opts.maxProfileBytes)
      }
      const asked = [...new Set(request.body.rooms ?? [])]
      if (asked.length > maxAskedRooms) throw new TooManyRoomsError(maxAskedRooms)
      const rooms = [...new Set([...who.rooms, ...asked])]
      if (rooms.length > opts.maxRoomsPerSession) throw new TooManyRoomsError(opts.maxRoomsPerSession)

      const id = newSessionId()
      if (ctx.authorize !== null) {
        const session = { id, profile, user: who.user, context: who.context }
        for (const room of asked) {
          // Rooms the server assigns are not asked about.
          if (!who.rooms.includes(room)) await ctx.authorize(session, { kind: 'join', room, via: 'register' }, request)
        }
      }

      const token = newToken()
      const tokenHash = hashToken(token)
      const rate = registerRate(request, who.user)
      const created = await core.call(() => store.createSession({ id, tokenHash, profile, user: who.user, context: who.context, rooms }, Date.now(), rate))
      if (!created.ok) {
        if (created.reason === 'limited') rateLimited(reply, 'registrations', created.retryMs)
        if (created.reason === 'user-full') throw new TooManySessionsError()
        reply.header('retry-after', '5')
        throw new SessionsFullError()
      }
      // Rooms asked for count as joins (a fresh session: within the limit, as checked above).
      if (joinRate !== null && asked.length > 0) {
        await core.call(() => store.authenticate(tokenHash, Date.now(), { ...joinRate, cost: asked.length }))
      }
      const profileJson = JSON.stringify(profile)
      for (let i = 0; i < rooms.length; i++) await core.joined(id, profileJson, rooms[i], created.sizes[i])
      return reply.code(201).send({
        id,
        token,
        cursor: '0',
        pollTimeoutMs: opts.pollTimeout,
        messageTtlMs: opts.messageTtl,
        sessionTtlMs: opts.sessionTtl
      })
    })

    app.delete('/session', { schema: schemas.endSession, onRequest: authenticated(ctx, null, '') }, async (request, reply) => {
      const ended = await core.call(() => store.endSession(sessionOf(request).id))
      if (ended !== null) await core.announceEnd(ended, 'ended')
      return reply.code(204).send(null)
    })
  }
}
