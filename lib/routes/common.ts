/**
 * What the route files share: their context (store, delivery core, held polls, options, the
 * `authorize` check), the session an authenticated request carries, the token check with its
 * rate limit (counted in the store in the same call), and the validator compiler.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { Authorize } from '../authorize.js'
import type { DeliveryCore } from '../delivery.js'
import { RateLimitedError, StoreUnavailableError, UnknownSessionError } from '../errors.js'
import type { HeldPolls } from '../held-poll.js'
import type { RateLimit, ResolvedOptions } from '../options.js'
import type { MailboxStore, RateCheck, SessionInfo } from '../stores/store.js'
import { bearerToken, hashToken, retrySeconds } from '../util.js'

export interface RouteContext {
  store: MailboxStore
  core: DeliveryCore
  polls: HeldPolls
  opts: ResolvedOptions
  /** Null without an `authorize` hook: everything is allowed. */
  authorize: Authorize | null
}

const kSession = Symbol('longPollSession')
type WithSession = FastifyRequest & { [kSession]?: SessionInfo }

/** The session of a request that passed `authenticated()`. */
export function sessionOf (request: FastifyRequest): SessionInfo {
  return (request as WithSession)[kSession] as SessionInfo
}

/** A rate limit as the store counts it; null when the option is off. */
export function rateCheck (bucket: string, limit: RateLimit | null): RateCheck | null {
  return limit === null ? null : { bucket, max: limit.max, window: limit.timeWindow }
}

/** Answers 429 with `retry-after` (whole seconds, at least 1). */
export function rateLimited (reply: FastifyReply, what: string, retryMs: number): never {
  const seconds = retrySeconds(retryMs)
  reply.header('retry-after', String(seconds))
  throw new RateLimitedError(what, seconds)
}

/** 401 LONGPOLL_UNKNOWN_SESSION with `www-authenticate: Bearer`. */
export function unknownSession (reply: FastifyReply): never {
  reply.header('www-authenticate', 'Bearer')
  throw new UnknownSessionError()
}

/**
 * The onRequest hook of a route that takes a token: the token is checked (401) and, when
 * `rate` is given, the request is counted in the same store call (429, nothing counted), so the
 * checks run in the protocol's order: token, rate limit, then the body (400, 413) and the rest.
 */
export function authenticated (ctx: RouteContext, rate: RateCheck | null, what: string) {
  const check = rate ?? undefined
  return async function authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const token = bearerToken(request.headers.authorization)
    if (token === null) unknownSession(reply)
    let found
    try {
      found = await ctx.store.authenticate(hashToken(token), Date.now(), check)
    } catch (err) {
      request.log.warn({ err }, 'long-poll store unavailable')
      throw new StoreUnavailableError()
    }
    if (!found.ok) {
      if (found.reason === 'limited') rateLimited(reply, what, found.retryMs)
      unknownSession(reply)
    }
    (request as WithSession)[kSession] = found.session
  }
}

/**
 * Compiles each schema once with TypeBox and checks values as they are: no type coercion (a body's
 * `"room": 1` is a 400, not room "1"), and no conversion pass (every query and param of the
 * protocol is a string already).
 */
export function validatorCompiler ({ schema }: { schema: unknown }) {
  const check = TypeCompiler.Compile(schema as TSchema)
  return (value: unknown) => {
    if (check.Check(value)) return { value }
    const error = [...check.Errors(value)].slice(0, 10).map((e) => ({
      keyword: String(e.type), schemaPath: e.path, params: {}, message: e.message, instancePath: e.path
    }))
    return { error }
  }
}
