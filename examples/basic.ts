/**
 * The smallest app using the plugin: `npm run example:basic` (PORT overrides 3000).
 * Then, in two shells (see the README for the whole curl session):
 *   curl -s -X POST localhost:3000/chat/register            # → { id, token, cursor, ... }
 *   curl -s -H "authorization: Bearer $TOKEN" localhost:3000/chat/poll
 */
import Fastify from 'fastify'
import { longPollChat } from '../lib/index.js'

async function main (): Promise<void> {
  const app = Fastify({
    // Tokens are secrets: never log the authorization header.
    logger: { redact: ['req.headers.authorization'] },
    // close() must not wait for client connections that opened and sent nothing
    forceCloseConnections: true
  })
  await app.register(longPollChat, { prefix: '/chat' })

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
