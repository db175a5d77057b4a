/**
 * The routes of PROTOCOL.md. Each authenticated route runs `authenticate` in `onRequest` (before
 * the body is parsed), so the checks run in the order the protocol fixes: token (401), rate limit
 * (429), body (400, 413), then addressing (403, 404).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { IncomingMessage, LongPollChatOptions, SessionInfo } from '../types/index.js'
import type { DeliveryCore } from './delivery.js'
import {
  BadCursorError, BadMessageError, MessageTooLargeError, NoSuchSessionError, NotAMemberError,
  ProfileTooLargeError, RateLimitedError, SessionsFullError, TooManyRoomsError, UnauthorizedError,
  UnknownSessionError
} from './errors.js'
import { schemas } from './schemas.js'
import { bearerToken, hashToken, jsonBytes, nestedDeeperThan, newSessionId, newToken, parseCursor } from './util.js'

const MAX_DEPTH = 32
const kSession = Symbol('longPollSession')
const kProfile = Symbol('longPollAuthProfile')
const kReserved = Symbol('longPollRateSlot')

type WithSession = FastifyRequest & {
  [kSession]?: SessionInfo
  /** The profile `authenticate` returned, when it returned one. */
  [kProfile]?: Record<string, unknown> | null
  /** The rate-limit window in which this request holds a slot. */
  [kReserved]?: number
}

/** The options once defaults are applied. */
export interface ResolvedOptions extends Required<Omit<LongPollChatOptions,
'prefix' | 'store' | 'authenticate' | 'onMessage' | 'onSessionEnd' | 'rateLimit'>> {
  rateLimit: { max: number, timeWindow: number } | false
  authenticate?: LongPollChatOptions['authenticate']
  onMessage?: LongPollChatOptions['onMessage']
  onSessionEnd?: LongPollChatOptions['onSessionEnd']
}

/**
 * Per-session fixed-window counter of accepted `POST /messages` (per instance). A send takes a
 * slot when it passes the check, so concurrent sends cannot overshoot `max`; a send that is then
 * refused (400, 403, 404, 413, 503) gives its slot back: only accepted sends count.
 */
export class RateLimiter {
  private readonly windows = new Map<string, { start: number, count: number }>()

  constructor (private readonly max: number, private readonly timeWindow: number) {}

  /**
   * Takes a slot: returns the window start it was taken in, or `-ms` (negative) with the
   * milliseconds until the next slot frees up.
   */
  take (sessionId: string, now: number): number {
    const w = this.windows.get(sessionId)
    if (w === undefined || now - w.start >= this.timeWindow) {
      this.windows.set(sessionId, { start: now, count: 1 })
      return now
    }
    if (w.count >= this.max) return -(w.start + this.timeWindow - now)
    w.count++
    return w.start
  }

  /** Gives back a slot taken in the window that started at `start` (if that window still runs). */
  giveBack (sessionId: string, start: number): void {
    const w = this.windows.get(sessionId)
    if (w !== undefined && w.start === start && w.count > 0) w.count--
  }

  /** Drops finished windows (called from the sweeper). */
  prune (now: number): void {
    for (const [id, w] of this.windows) {
      if (now - w.start >= this.timeWindow) this.windows.delete(id)
    }
  }
}

/**
 * Compiles each schema once with TypeBox and checks values as they are: no type coercion (a body's
 * `"room": 1` is a 400, not room "1"), and no conversion pass on the hot poll path (every query
 * and param of the protocol is a string already).
 */
function validatorCompiler ({ schema }: { schema: unknown }) {
  const check = TypeCompiler.Compile(schema as TSchema)
  return (value: unknown) => {
    if (check.Check(value)) return { value }
    const error = [...check.Errors(value)].slice(0, 10).map((e) => ({
      keyword: String(e.type), schemaPath: e.path, params: {}, message: e.message, instancePath: e.path
    }))
    return { error }
  }
}

function session (request: FastifyRequest): SessionInfo {
  return (request as WithSession)[kSession] as SessionInfo
}

export function routes (core: DeliveryCore, opts: ResolvedOptions, limiter: RateLimiter | null) {
  return async function longPollRoutes (fastify: FastifyInstance): Promise<void> {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
    const { store } = core
    app.setValidatorCompiler(validatorCompiler)

    // A callback hook, not an async one: it runs on every response, held polls included.
    app.addHook('onSend', (_request, reply, payload, done) => {
      reply.header('cache-control', 'no-store')
      // Every 503 (store unavailable, shutting down, sessions full) tells the client when to retry.
      if (reply.statusCode === 503 && !reply.hasHeader('retry-after')) reply.header('retry-after', '1')
      done(null, payload)
    })

    /** onRequest of every route that takes a token. */
    async function authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
      const token = bearerToken(request.headers.authorization)
      const found = token === null ? null : await core.call(store.authenticate(hashToken(token), Date.now()))
      if (found === null) {
        reply.header('www-authenticate', 'Bearer')
        throw new UnknownSessionError()
      }
      (request as WithSession)[kSession] = found
    }

    async function rateLimit (request: FastifyRequest, reply: FastifyReply): Promise<void> {
      if (limiter === null) return
      const slot = limiter.take(session(request).id, Date.now())
      if (slot < 0) {
        const seconds = Math.max(1, Math.ceil(-slot / 1000))
        reply.header('retry-after', String(seconds))
        throw new RateLimitedError(seconds)
      }
      (request as WithSession)[kReserved] = slot
    }

    /** onResponse of POST /messages: a send that was not accepted gives its slot back. */
    async function refundSlot (request: FastifyRequest, reply: FastifyReply): Promise<void> {
      const slot = (request as WithSession)[kReserved]
      if (limiter !== null && slot !== undefined && reply.statusCode !== 202) limiter.giveBack(session(request).id, slot)
    }

    /** onRequest of POST /register: the app's `authenticate` runs before anything else. */
    async function gate (request: FastifyRequest): Promise<void> {
      if (opts.authenticate === undefined) return
      let result
      try {
        result = await opts.authenticate(request)
      } catch (err) {
        request.log.info({ err }, 'long-poll authenticate refused registration')
        throw new UnauthorizedError()
      }
      if (!result) throw new UnauthorizedError()
      if (typeof result === 'object' && result.profile !== undefined) (request as WithSession)[kProfile] = result.profile
    }

    const bodyLimit = Math.max(65_536, opts.maxMessageBytes * 8 + 4096)

    app.post('/register', {
      schema: schemas.register,
      bodyLimit: Math.max(65_536, opts.maxProfileBytes * 8 + 65_536),
      onRequest: gate,
      preValidation: async (request) => {
        if (request.body === undefined || request.body === null) request.body = {}
      }
    }, async (request, reply) => {
      const fromAuth = (request as WithSession)[kProfile]
      const profile = fromAuth !== undefined ? fromAuth : request.body.profile ?? null
      if (profile !== null) {
        if (nestedDeeperThan(profile, MAX_DEPTH)) throw new BadMessageError('profile is nested too deeply')
        if (jsonBytes(JSON.stringify(profile)) > opts.maxProfileBytes) throw new ProfileTooLargeError(opts.maxProfileBytes)
      }
      const rooms = [...new Set(request.body.rooms ?? [])]
      if (rooms.length > opts.maxRoomsPerSession) throw new TooManyRoomsError(opts.maxRoomsPerSession)

      const id = newSessionId()
      const token = newToken()
      const created = await core.call(store.createSession({ id, tokenHash: hashToken(token), profile, rooms }, Date.now()))
      if (!created) {
        reply.header('retry-after', '5')
        throw new SessionsFullError()
      }
      for (const room of rooms) await core.publish('join', id, { kind: 'room', room }, profile)
      return reply.code(201).send({
        id,
        token,
        cursor: '0',
        pollTimeoutMs: opts.pollTimeout,
        messageTtlMs: opts.messageTtl,
        sessionTtlMs: opts.sessionTtl
      })
    })

    // Not async: the delivery core answers through `reply` when the poll is over.
    app.get('/poll', { schema: schemas.poll, onRequest: authenticate }, (request, reply) => {
      const cursor = parseCursor(request.query.cursor)
      if (Number.isNaN(cursor)) throw new BadCursorError()
      const wait = request.query.wait
      const holdMs = wait === undefined ? opts.pollTimeout : Math.min(Number(wait), opts.pollTimeout)
      core.poll(session(request).id, cursor, holdMs, reply as unknown as FastifyReply)
    })

    app.post('/messages', {
      schema: schemas.messages,
      bodyLimit,
      onRequest: [authenticate, rateLimit],
      onResponse: refundSlot
    }, async (request, reply) => {
      const sender = session(request)
      const { room, to } = request.body
      let { data } = request.body
      if (room !== undefined && to !== undefined) throw new BadMessageError('a message takes at most one of room and to')
      if (data === undefined) throw new BadMessageError('data is required')
      if (nestedDeeperThan(data, MAX_DEPTH)) throw new BadMessageError('data is nested deeper than 32 levels')
      let dataJson = JSON.stringify(data)
      if (jsonBytes(dataJson) > opts.maxMessageBytes) throw new MessageTooLargeError(opts.maxMessageBytes)

      if (opts.onMessage !== undefined) {
        const incoming: IncomingMessage = { from: sender.id, profile: sender.profile, room: room ?? null, to: to ?? null, data }
        let verdict
        try {
          verdict = await opts.onMessage(incoming, request)
        } catch (err) {
          const status = (err as { statusCode?: number }).statusCode
          if (typeof status === 'number' && status >= 400 && status < 500) throw err
          request.log.warn({ err }, 'long-poll onMessage refused a message')
          throw new BadMessageError('message refused')
        }
        if (verdict === false) throw new BadMessageError('message refused')
        if (typeof verdict === 'object' && verdict !== null && 'data' in verdict) {
          data = verdict.data
          const json = JSON.stringify(data)
          if (json === undefined) throw new BadMessageError('message refused')
          dataJson = json
        }
      }

      if (room !== undefined && !sender.rooms.includes(room)) throw new NotAMemberError(room)
      const target = room !== undefined
        ? { kind: 'room' as const, room }
        : to !== undefined ? { kind: 'session' as const, id: to } : { kind: 'all' as const }
      const sent = await core.publish('message', sender.id, target, data, dataJson)
      if (to !== undefined && sent.recipients === 0) throw new NoSuchSessionError()
      return reply.code(202).send({ id: sent.id, ts: sent.ts })
    })

    app.post('/rooms/:room/join', { schema: schemas.join, onRequest: authenticate }, async (request, reply) => {
      const { id, profile } = session(request)
      const { room } = request.params
      const result = await core.call(store.join(id, room))
      if (result === 'no-session') throw new UnknownSessionError()
      if (result === 'too-many') throw new TooManyRoomsError(opts.maxRoomsPerSession)
      if (result === 'joined') await core.publish('join', id, { kind: 'room', room }, profile)
      return reply.code(204).send(null)
    })

    app.post('/rooms/:room/leave', { schema: schemas.leave, onRequest: authenticate }, async (request, reply) => {
      const { id, profile } = session(request)
      const { room } = request.params
      if (await core.call(store.leave(id, room))) await core.publish('leave', id, { kind: 'room', room }, profile)
      return reply.code(204).send(null)
    })

    app.get('/rooms/:room/members', { schema: schemas.members, onRequest: authenticate }, async (request) => {
      const { room } = request.params
      if (!session(request).rooms.includes(room)) throw new NotAMemberError(room)
      return { members: await core.call(store.members(room)) }
    })

    app.delete('/session', { schema: schemas.endSession, onRequest: authenticate }, async (request, reply) => {
      const ended = await core.call(store.endSession(session(request).id))
      if (ended !== null) await core.announceEnd(ended, 'ended')
      return reply.code(204).send(null)
    })
  }
}
