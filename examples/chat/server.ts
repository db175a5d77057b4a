/**
 * The example chat: `npm run example`, then open http://localhost:3000 in two browser windows.
 *
 * A Fastify app that mounts the plugin under /chat (in-memory store), serves the page from
 * examples/chat/public/ and the browser build of the client (dist/browser/client.js, made by
 * `npm run build`) at /client.js, all from this server: nothing is loaded from elsewhere.
 * PORT (3000) and HOST (127.0.0.1) come from the environment.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fastifyStatic from '@fastify/static'
import { longPollChat } from '../../lib/index.js'
import type { LongPollChatOptions } from '../../types/index.js'

const publicDir = join(__dirname, 'public')
const browserDir = join(__dirname, '..', '..', 'dist', 'browser')

/** Longest message text the page accepts. */
export const MAX_TEXT = 2000

export interface ChatAppOptions {
  fastify?: FastifyServerOptions
  /** Plugin options (the prefix is always /chat: the page uses it). */
  chat?: Omit<LongPollChatOptions, 'prefix'>
}

/** Builds the app (not listening yet); the e2e tests start it on port 0. */
export async function buildChatApp (options: ChatAppOptions = {}): Promise<FastifyInstance> {
  if (!existsSync(join(browserDir, 'client.js'))) {
    throw new Error('dist/browser/client.js is missing: run `npm run build` first (`npm run example` does)')
  }
  const app = Fastify({
    // Tokens are secrets: never log the authorization header.
    logger: { redact: ['req.headers.authorization'] },
    // Close every connection on shutdown, including one a browser opened and never used.
    forceCloseConnections: true,
    ...options.fastify
  })

  await app.register(longPollChat, {
    ...options.chat,
    prefix: '/chat',
    // The page sends `{ text }`; the server checks it and stamps the sender's name from the
    // profile it registered with, so that nobody can post under another name.
    onMessage (message) {
      const data = message.data as { text?: unknown } | null
      const text = typeof data?.text === 'string' ? data.text.trim() : ''
      if (text === '' || text.length > MAX_TEXT) return false
      const name = typeof message.profile?.name === 'string' ? message.profile.name : 'someone'
      return { data: { text, name } }
    }
  })

  await app.register(fastifyStatic, { root: publicDir, prefix: '/' })
  app.get('/client.js', (_request, reply) => reply.sendFile('client.js', browserDir))
  return app
}

async function main (): Promise<void> {
  const app = await buildChatApp()
  const port = Number(process.env.PORT ?? 3000)
  const host = process.env.HOST ?? '127.0.0.1'
  await app.listen({ port, host })
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
