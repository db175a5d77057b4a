/**
 * The example chat: `npm run example`, then open http://localhost:3000 in two browser windows.
 *
 * A Fastify app that mounts the plugin under /chat (in-memory store), serves the page from
 * examples/chat/public/ and the browser build of the client (dist/browser/client.js, made by
 * `npm run build`) at /client.js, all from this server: nothing is loaded from elsewhere.
 * PORT (3000) and HOST (127.0.0.1) come from the environment; HTTP2=1 serves HTTP/2 over TLS
 * with a self-signed certificate for localhost made at start (tls.ts; the browser warns once).
 *
 * What the server decides (the plugin's hooks):
 * - who a page is: each browser gets a random user id in an httpOnly cookie (set on its first
 *   request when missing; no login), so all pages of one browser are one person to the plugin
 *   (`authenticate` returns it as the session's `user`). The id never leaves the server: the
 *   profile carries the name the page chose and a public `person` id derived from it with a key
 *   made at start, so that pages can tell which sessions are one person;
 * - every session is put in `announcements` (a room assigned at register), which only the server
 *   posts to (`authorize` refuses `sendRoom` there, and posting to everyone); the server posts a
 *   welcome at start and a tip every `announceEvery` ms;
 * - each message is checked and stamped with the sender's name and person from its profile
 *   (`onMessage`), so nobody posts under another name, and a server message (`from: null`) is
 *   one no client can make;
 * - rooms keep their recent history (the page shows it when you enter a room and after a reload).
 */
import { createHmac, randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Http2SecureServer } from 'node:http2'
import Fastify, { type FastifyHttp2SecureOptions, type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import fastifyStatic from '@fastify/static'
import { longPollChat } from '../../lib/index.js'
import type { LongPollChatOptions } from '../../types/index.js'
import { selfSignedCertificate } from './tls.js'

const publicDir = join(__dirname, 'public')
const browserDir = join(__dirname, '..', '..', 'dist', 'browser')

/** Longest message text the page accepts. */
export const MAX_TEXT = 2000
/** Longest name. */
export const MAX_NAME = 32
/** The room every session reads and only the server posts to. */
export const ANNOUNCEMENTS = 'announcements'
/** The cookie with the browser's user id (random, httpOnly). */
export const USER_COOKIE = 'chat-user'
const USER_ID = /^[A-Za-z0-9_-]{22,64}$/

/** What the server posts to #announcements: the first at start, then one after the other. */
export const TIPS = [
  'Welcome! Everyone reads #announcements; only the server posts here. Say hello in #lobby.',
  'Tip: choose a person in the member list to write to them alone. They get it in every tab they have open.',
  'Tip: reload the page or open it in more tabs: the conversation stays, and the tabs share one connection.',
  'Tip: a room keeps its recent messages: join one and you see what was said before you came.'
]

export interface ChatAppOptions {
  fastify?: FastifyServerOptions
  /** Plugin options (the prefix is always /chat: the page uses it). */
  chat?: Omit<LongPollChatOptions, 'prefix'>
  /** HTTP/2 over TLS with a fresh self-signed certificate for localhost (HTTP/1.1 is still accepted). */
  http2?: boolean
  /** How often the server posts the next tip to #announcements, ms (60 000; 0: only the welcome at start). */
  announceEvery?: number
}

/** The value of cookie `name` in a Cookie header, or null. */
function cookie (header: string | undefined, name: string): string | null {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return null
}

/** The name the page asked for (the body is not validated yet when `authenticate` runs). */
function nameOf (body: unknown): string {
  const name = (body as { profile?: { name?: unknown } } | null)?.profile?.name
  // No control characters; at most MAX_NAME characters.
  const clean = typeof name === 'string' ? name.replace(/[\p{Cc}\p{Cf}]/gu, '').trim() : ''
  return clean === '' ? 'someone' : [...clean].slice(0, MAX_NAME).join('')
}

/** Builds the app (not listening yet); the e2e tests start it on port 0. */
export async function buildChatApp (options: ChatAppOptions = {}): Promise<FastifyInstance> {
  if (!existsSync(join(browserDir, 'client.js'))) {
    throw new Error('dist/browser/client.js is missing: run `npm run build` first (`npm run example` does)')
  }
  const base: FastifyServerOptions = {
    // Tokens and the user cookie are secrets: never log them.
    logger: { redact: ['req.headers.authorization', 'req.headers.cookie'] },
    // Close every connection on shutdown, including one a browser opened and never used.
    forceCloseConnections: true,
    // A connection silent for longer than a held poll (25 s) plus the time to answer it is dead.
    connectionTimeout: 40_000,
    // The whole request (headers and body) must arrive within 10 s; held polls are not limited
    // by it (their request is complete: the response is what waits).
    requestTimeout: 10_000,
    // Behind a proxy, TRUST_PROXY=1 makes request.ip (the registration limit's key) the client's.
    trustProxy: process.env.TRUST_PROXY === '1',
    ...options.fastify
  }
  // Browsers speak HTTP/2 only over TLS; `allowHTTP1` keeps curl and Node's fetch working.
  // (One type for both: the routes below do not depend on the HTTP version.)
  const app = (options.http2 === true
    ? Fastify({ ...base as FastifyHttp2SecureOptions<Http2SecureServer>, http2: true, https: { ...selfSignedCertificate(), allowHTTP1: true } })
    : Fastify(base)) as unknown as FastifyInstance

  // Each browser is one person: a random id in an httpOnly cookie, set on its first request.
  const users = new WeakMap<FastifyRequest, string>()
  const secure = options.http2 === true ? '; Secure' : ''
  app.addHook('onRequest', async (request, reply) => {
    let user = cookie(request.headers.cookie, USER_COOKIE)
    if (user === null || !USER_ID.test(user)) {
      user = randomBytes(18).toString('base64url')
      reply.header('set-cookie', `${USER_COOKIE}=${user}; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000${secure}`)
    }
    users.set(request, user)
  })
  // The public id of a person: others see it (to group a person's sessions), but cannot get the cookie from it.
  const personKey = randomBytes(32)
  const personOf = (user: string): string => createHmac('sha256', personKey).update(user).digest('base64url').slice(0, 16)

  await app.register(longPollChat, {
    // Room history: what was said in a room in the last hour (at most 100 messages), for those
    // who enter it and for pages that reload.
    history: { maxMessages: 100, maxAge: 3_600_000 },
    // The tabs of a browser share one session (and its budget of member and history pages).
    pageRateLimit: { max: 100, timeWindow: 10_000 },
    ...options.chat,
    prefix: '/chat',
    // Who the page is: the browser's user (its cookie), a trusted profile, and #announcements.
    authenticate (request) {
      const user = users.get(request)
      if (user === undefined) return false
      return { user, profile: { name: nameOf(request.body), person: personOf(user) }, rooms: [ANNOUNCEMENTS] }
    },
    // Only the server posts to #announcements and to everyone; the rest is open.
    authorize (_session, action) {
      if (action.kind === 'sendRoom') return action.room !== ANNOUNCEMENTS
      return action.kind !== 'broadcast'
    },
    // The page sends `{ text }`; the server checks it and stamps the sender's name and person
    // from the profile it registered with, so that nobody can post under another name.
    onMessage (message) {
      const data = message.data as { text?: unknown } | null
      const text = typeof data?.text === 'string' ? data.text.trim() : ''
      if (text === '' || text.length > MAX_TEXT) return false
      const name = typeof message.profile?.name === 'string' ? message.profile.name : 'someone'
      const person = typeof message.profile?.person === 'string' ? message.profile.person : null
      return { data: { text, name, person } }
    }
  })

  await app.register(fastifyStatic, { root: publicDir, prefix: '/' })
  app.get('/client.js', (_request, reply) => reply.sendFile('client.js', browserDir))

  // The server's own messages (`from: null`): a welcome at start, then a tip now and then.
  let next = 0
  const announce = async (): Promise<void> => {
    const text = TIPS[next % TIPS.length] as string
    next++
    await app.longPoll.broadcast({ text }, { room: ANNOUNCEMENTS }).catch((err: unknown) => app.log.warn({ err }, 'announcement not posted'))
  }
  let timer: ReturnType<typeof setInterval> | undefined
  app.addHook('onReady', async () => {
    await announce()
    const every = options.announceEvery ?? 60_000
    if (every > 0) timer = setInterval(() => { announce().catch(() => {}) }, every).unref()
  })
  app.addHook('preClose', async () => { clearInterval(timer) })
  return app
}

async function main (): Promise<void> {
  const http2 = process.env.HTTP2 === '1'
  const app = await buildChatApp({ http2 })
  const port = Number(process.env.PORT ?? 3000)
  const host = process.env.HOST ?? '127.0.0.1'
  await app.listen({ port, host })
  if (http2) app.log.info(`HTTP/2: open https://localhost:${port} and accept the self-signed certificate`)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
