/**
 * The `authorize` hook runner (PROTOCOL.md, "Authorization"): asked before each action, on every
 * path that leads to it. Only `true` allows; any other value refuses, and anything thrown (an
 * Error, null, a string, an object) refuses too, with a log line: 403 LONGPOLL_FORBIDDEN, never
 * a 5xx. Without the hook every action is allowed.
 */
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { AuthorizeAction, HookSession } from '../types/index.js'
import { ForbiddenError } from './errors.js'
import type { ResolvedOptions } from './options.js'

/** What the refusal says (no private data: never the user, never `data`). */
function what (action: AuthorizeAction): string {
  switch (action.kind) {
    case 'join': return `join room ${action.room}`
    case 'members': return `read the members of room ${action.room}`
    case 'history': return `read the history of room ${action.room}`
    case 'sendRoom': return `post to room ${action.room}`
    case 'sendSession': return 'post to this session'
    case 'sendUser': return 'post to this person'
    case 'broadcast': return 'post to everyone'
  }
}

/** A thrown value as a log field: Errors through pino's `err` serializer, anything else described. */
export function thrownField (value: unknown): Record<string, unknown> {
  if (value instanceof Error) return { err: value }
  let text: string
  try {
    text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value)
  } catch {
    text = Object.prototype.toString.call(value)
  }
  return { thrown: text.slice(0, 200) }
}

export type Authorize = (session: HookSession, action: AuthorizeAction, request: FastifyRequest) => Promise<void>

/** Builds the check: resolves when allowed, rejects with 403 LONGPOLL_FORBIDDEN when refused. */
export function authorizer (opts: Pick<ResolvedOptions, 'authorize'>, log: FastifyBaseLogger): Authorize | null {
  const hook = opts.authorize
  if (hook === undefined) return null
  return async function authorize (session, action, request) {
    let verdict: unknown
    try {
      verdict = await hook(session, action, request)
    } catch (thrown) {
      (request?.log ?? log).warn({ ...thrownField(thrown), action: action.kind, session: session.id },
        'long-poll authorize hook threw: the action is refused')
      throw new ForbiddenError(what(action))
    }
    if (verdict !== true) throw new ForbiddenError(what(action))
  }
}

/** The session as hooks see it. */
export function hookSession (s: { id: string, profile: Record<string, unknown> | null, user: string | null, context: unknown }): HookSession {
  return { id: s.id, profile: s.profile, user: s.user, context: s.context ?? null }
}
