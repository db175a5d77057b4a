/**
 * The example chat: `npm run example`, then open http://localhost:3000 in two browser windows.
 *
 * A Fastify app that mounts the plugin under /chat (in-memory store), serves the page from
 * examples/chat/public/ and the browser build of the client (dist/browser/client.js, made by
 * `npm run build`) at /client.js, all from this server: nothing is loaded from elsewhere.
 * PORT (3000) and HOST (127.0.0.1) come from the environment; HTTP2=1 serves HTTP/2 over TLS
 * with a self-signed certificate for localhost made at start (tls.ts; the browser warns once).
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Http2SecureServer } from 'node:http2'
import Fastify, { type FastifyHttp2SecureOptions, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fastifyStatic from '@fastify/static'
import { longPollChat } from '../../lib/index.js'
import type { LongPollChatOptions } from '../../types/index.js'
import { selfSignedCertificate } from './tls.js'

const publicDir = join(__dirname, 'public')
const browserDir = join(__dirname, '..', '..', 'dist', 'browser')

/** Longest message text the page accepts. */
export const MAX_TEXT = 2000

export interface ChatAppOptions {
  fastify?: FastifyServerOptions
  /** Plugin options (the prefix is always /chat: the page uses it). */
  chat?: Omit<LongPollChatOptions, 'prefix'>
  /** HTTP/2 over TLS with a fresh self-signed certificate for localhost (HTTP/1.1 is still accepted). */
  http2?: boolean
}

/** Builds the app (not listening yet); the e2e tests start it on port 0. */
export async function buildChatApp (options: ChatAppOptions = {}): Promise<FastifyInstance> {
  if (!existsSync(join(browserDir, 'client.js'))) {
    throw new Error('dist/browser/client.js is missing: run `npm run build` first (`npm run example` does)')
  }
  const base: FastifyServerOptions = {
    // Tokens are secrets: never log the authorization header.
    logger: { redact: ['req.headers.authorization'] },
    // Close every connection on shutdown, including one a browser opened and never used.
    forceCloseConnections: true,
    ...options.fastify
  }
  // Browsers speak HTTP/2 only over TLS; `allowHTTP1` keeps curl and Node's fetch working.
  // (One type for both: the routes below do not depend on the HTTP version.)
  const app = (options.http2 === true
    ? Fastify({ ...base as FastifyHttp2SecureOptions<Http2SecureServer>, http2: true, https: { ...selfSignedCertificate(), allowHTTP1: true } })
    : Fastify(base)) as unknown as FastifyInstance

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
