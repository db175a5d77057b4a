/**
 * The plugin options: defaults applied and every option checked at register time. A wrong one
 * throws LONGPOLL_INVALID_OPTION naming it, before any route exists.
 */
import type { FastifyRequest } from 'fastify'
import type {
  AuthorizeAction, AuthenticateResult, HookSession, IncomingMessage, LongPollChatOptions,
  OnMessageResult, SessionEndInfo
} from '../types/index.js'
import { InvalidOptionError } from './errors.js'
import type { MailboxStore } from './stores/store.js'

export interface RateLimit {
  max: number
  timeWindow: number
}

export interface RegisterRateLimit extends RateLimit {
  key?: (request: FastifyRequest, user: string | null) => string | null
}

/** The options once defaults are applied. */
export interface ResolvedOptions {
  prefix: string
  store: MailboxStore | undefined
  pollTimeout: number
  messageTtl: number
  sessionTtl: number
  maxMailboxMessages: number
  maxMessageBytes: number
  maxProfileBytes: number
  maxSessions: number
  maxRoomsPerSession: number
  /** 0: no cap. */
  maxSessionsPerUser: number
  maxMessagesPerPoll: number
  maxPollBytes: number
  presenceLimit: number
  membersPageSize: number
  historyPageSize: number
  responseTimeout: number
  history: { maxMessages: number, maxAge: number } | null
  rateLimit: RateLimit | null
  joinRateLimit: RateLimit | null
  pageRateLimit: RateLimit | null
  registerRateLimit: RegisterRateLimit | null
  sweepInterval: number
  authenticate?: (request: FastifyRequest) => AuthenticateResult | Promise<AuthenticateResult>
  authorize?: (session: HookSession, action: AuthorizeAction, request: FastifyRequest) => boolean | Promise<boolean>
  onMessage?: (message: IncomingMessage, request: FastifyRequest) => OnMessageResult | Promise<OnMessageResult>
  onSessionEnd?: (session: SessionEndInfo) => void | Promise<void>
}

/** Every method the plugin calls on a store (lib/stores/store.ts). */
const STORE_METHODS = [
  'init', 'createSession', 'authenticate', 'refund', 'poll', 'read', 'endPoll', 'lookup',
  'endSession', 'endUser', 'userSessions', 'join', 'leave', 'members', 'history', 'publish',
  'sweep', 'stats', 'close'
] as const

function integer (name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    const what = min === 0 ? 'an integer >= 0' : 'a positive integer'
    throw new InvalidOptionError(`${name}: expected ${what}, got ${describe(value)}`)
  }
  return value
}

function describe (value: unknown): string {
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value)
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return typeof value
  }
}

function optionalFunction<T> (name: string, value: T | undefined): T | undefined {
  if (value !== undefined && typeof value !== 'function') throw new InvalidOptionError(`${name}: expected a function`)
  return value
}

function isObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function rateLimit (name: string, value: unknown, max: number, timeWindow: number): RateLimit | null {
  if (value === false) return null
  if (value === undefined) return { max, timeWindow }
  if (!isObject(value)) throw new InvalidOptionError(`${name}: expected { max, timeWindow } or false`)
  return {
    max: integer(`${name}.max`, value.max, max, 1),
    timeWindow: integer(`${name}.timeWindow`, value.timeWindow, timeWindow, 1)
  }
}

function history (value: unknown): ResolvedOptions['history'] {
  if (value === undefined || value === false) return null
  if (!isObject(value)) throw new InvalidOptionError('history: expected { maxMessages, maxAge } or false')
  if (value.maxMessages === undefined || value.maxAge === undefined) {
    throw new InvalidOptionError('history: expected { maxMessages, maxAge } (both positive integers)')
  }
  return {
    maxMessages: integer('history.maxMessages', value.maxMessages, 0, 1),
    maxAge: integer('history.maxAge', value.maxAge, 0, 1)
  }
}

function store (value: unknown): MailboxStore | undefined {
  if (value === undefined) return undefined
  for (const method of STORE_METHODS) {
    if (typeof (value as Record<string, unknown> | null)?.[method] !== 'function') {
      throw new InvalidOptionError(`store: expected a MailboxStore (missing ${method}())`)
    }
  }
  return value as MailboxStore
}

/** Applies defaults and checks every option; throws LONGPOLL_INVALID_OPTION for a wrong one. */
export function resolveOptions (opts: LongPollChatOptions): ResolvedOptions {
  if (opts === null || typeof opts !== 'object') throw new InvalidOptionError('options: expected an object')
  const { prefix = '' } = opts
  if (typeof prefix !== 'string' || (prefix !== '' && !prefix.startsWith('/'))) {
    throw new InvalidOptionError('prefix: expected a string starting with /')
  }
  const register = rateLimit('registerRateLimit', opts.registerRateLimit, 30, 60_000)
  const key = opts.registerRateLimit === false ? undefined : optionalFunction('registerRateLimit.key', opts.registerRateLimit?.key)
  return {
    prefix,
    store: store(opts.store),
    pollTimeout: integer('pollTimeout', opts.pollTimeout, 25_000, 1),
    messageTtl: integer('messageTtl', opts.messageTtl, 60_000, 1),
    sessionTtl: integer('sessionTtl', opts.sessionTtl, 300_000, 1),
    maxMailboxMessages: integer('maxMailboxMessages', opts.maxMailboxMessages, 1000, 1),
    maxMessageBytes: integer('maxMessageBytes', opts.maxMessageBytes, 16_384, 1),
    maxProfileBytes: integer('maxProfileBytes', opts.maxProfileBytes, 1024, 1),
    maxSessions: integer('maxSessions', opts.maxSessions, 100_000, 1),
    maxRoomsPerSession: integer('maxRoomsPerSession', opts.maxRoomsPerSession, 100, 1),
    maxSessionsPerUser: integer('maxSessionsPerUser', opts.maxSessionsPerUser, 0, 1),
    maxMessagesPerPoll: integer('maxMessagesPerPoll', opts.maxMessagesPerPoll, 500, 1),
    maxPollBytes: integer('maxPollBytes', opts.maxPollBytes, 262_144, 1),
    presenceLimit: integer('presenceLimit', opts.presenceLimit, 100, 0),
    membersPageSize: integer('membersPageSize', opts.membersPageSize, 100, 1),
    historyPageSize: integer('historyPageSize', opts.historyPageSize, 50, 1),
    responseTimeout: integer('responseTimeout', opts.responseTimeout, 10_000, 1),
    history: history(opts.history),
    rateLimit: rateLimit('rateLimit', opts.rateLimit, 20, 1000),
    joinRateLimit: rateLimit('joinRateLimit', opts.joinRateLimit, 20, 10_000),
    pageRateLimit: rateLimit('pageRateLimit', opts.pageRateLimit, 30, 10_000),
    registerRateLimit: register === null ? null : { ...register, ...(key === undefined ? {} : { key }) },
    sweepInterval: integer('sweepInterval', opts.sweepInterval, 1000, 1),
    authenticate: optionalFunction('authenticate', opts.authenticate),
    authorize: optionalFunction('authorize', opts.authorize),
    onMessage: optionalFunction('onMessage', opts.onMessage),
    onSessionEnd: optionalFunction('onSessionEnd', opts.onSessionEnd)
  }
}
