/**
 * "Who may do what" (README): the application decides. `npm run example:policy` (PORT overrides
 * 3000). Users log in elsewhere in your app, which sets a signed cookie `auth=<user>.<hmac>`;
 * this file reads it in `authenticate` (no dependency: node:crypto), and its `authorize`
 * policy says: only invited users join (and read) `team-*` rooms, only admins post to everyone,
 * and a banned user is out everywhere at once. test/example-policy.test.ts drives it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import { longPollChat } from '../lib/index.js'

export interface Directory {
  admins: Set<string>
  /** room → the users invited to it */
  invited: Map<string, Set<string>>
  banned: Set<string>
}

/** The value of the `auth` cookie your login route sets (HttpOnly, Secure, SameSite=Lax). */
export function signUser (secret: string, user: string): string {
  return `${user}.${createHmac('sha256', secret).update(user).digest('hex')}`
}

function userFromCookie (secret: string, request: FastifyRequest): string | null {
  const match = /(?:^|;\s*)auth=([^;]+)/.exec(request.headers.cookie ?? '')
  if (match === null) return null
  const value = decodeURIComponent(match[1])
  const dot = value.lastIndexOf('.')
  if (dot <= 0) return null
  const user = value.slice(0, dot)
  const expected = createHmac('sha256', secret).update(user).digest()
  const given = Buffer.from(value.slice(dot + 1), 'hex')
  return given.length === expected.length && timingSafeEqual(given, expected) ? user : null
}

export async function buildPolicyApp (secret: string, directory: Directory, options: { logger?: boolean } = {}): Promise<FastifyInstance> {
  const { admins, invited, banned } = directory
  const POLL_TIMEOUT = 25_000
  const app = Fastify({
    // Tokens and cookies are secrets: never log them.
    logger: options.logger === false ? false : { redact: ['req.headers.authorization', 'req.headers.cookie'] },
    trustProxy: process.env.TRUST_PROXY === '1', // behind a proxy: request.ip is the client's address
    connectionTimeout: POLL_TIMEOUT + 15_000,
    requestTimeout: 10_000,
    forceCloseConnections: true
  })
  const isInvited = (room: string, user: string): boolean => !room.startsWith('team-') || invited.get(room)?.has(user) === true

  await app.register(longPollChat, {
    prefix: '/chat',
    pollTimeout: POLL_TIMEOUT,
    maxSessionsPerUser: 10,
    // Who is registering: the signed cookie of your login (or a JWT: see the README).
    authenticate (request) {
      const user = userFromCookie(secret, request)
      if (user === null || banned.has(user)) return false
      return { user, profile: { name: user }, rooms: ['lobby'], context: { admin: admins.has(user) } }
    },
    // What each session may do: asked on every path to each action (join at register and by route, ...).
    authorize (session, action) {
      const user = session.user
      if (user === null || banned.has(user)) return false
      switch (action.kind) {
        case 'join':
        case 'members':
        case 'history':
        case 'sendRoom':
          return isInvited(action.room, user)
        case 'broadcast':
          return (session.context as { admin: boolean }).admin
        case 'sendSession':
        case 'sendUser':
          return true
      }
    }
  })

  // Your admin API: a ban takes the user out everywhere at once (every tab's poll gets 401;
  // authenticate and authorize refuse them from now on).
  app.post<{ Params: { user: string } }>('/admin/ban/:user', async (request, reply) => {
    const admin = userFromCookie(secret, request)
    if (admin === null || !admins.has(admin)) return await reply.code(403).send({ error: 'admins only' })
    banned.add(request.params.user)
    return { ended: await app.longPoll.endUser(request.params.user) }
  })
  return app
}

async function main (): Promise<void> {
  const secret = process.env.SESSION_SECRET ?? 'change me: a long random string'
  const app = await buildPolicyApp(secret, {
    admins: new Set(['ada']),
    invited: new Map([['team-core', new Set(['ada', 'grace'])]]),
    banned: new Set()
  })
  await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' })
  app.log.info(`try: curl -s -X POST -H 'cookie: auth=${signUser(secret, 'grace')}' localhost:3000/chat/register`)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
  }
}

if (process.argv[1]?.endsWith('policy.ts') === true) {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
