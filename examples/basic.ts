/**
 * The smallest app using the plugin: `npm run example:basic` (PORT overrides 3000).
 * Then, in two shells (see the README for the whole curl session):
 *   curl -s -X POST localhost:3000/chat/register            # → { id, token, cursor, ... }
 *   curl -s -H "authorization: Bearer $TOKEN" localhost:3000/chat/poll
 */
import Fastify from 'fastify'
import { longPollChat } from '../lib/index.js'

const POLL_TIMEOUT = 25_000

async function main (): Promise<void> {
  const app = Fastify({
    // Tokens are secrets: never log the authorization header.
    logger: { redact: ['req.headers.authorization'] },
    // A connection silent for longer than a held poll plus the time to answer it is dead.
    connectionTimeout: POLL_TIMEOUT + 15_000,
    // The whole request (headers and body) must arrive within 10 s: slow uploads are cut.
    // It does not limit held polls (their request is complete; the response is what waits).
    requestTimeout: 10_000,
    // keepAliveTimeout: Fastify's 72 s default suits clients that poll again at once; behind a
    // proxy, keep it above the proxy's idle timeout.
    // Behind a proxy, set trustProxy so that request.ip (the registration limit's key) is the client's.
    trustProxy: process.env.TRUST_PROXY === '1',
    // close() must not wait for client connections that opened and sent nothing
    forceCloseConnections: true
  })
  await app.register(longPollChat, { prefix: '/chat', pollTimeout: POLL_TIMEOUT })

  const port = Number(process.env.PORT ?? 3000)
  await app.listen({ port, host: process.env.HOST ?? '127.0.0.1' })
  await app.longPoll.broadcast({ text: 'server says hi' })

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
