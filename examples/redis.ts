/**
 * Two instances of the chat sharing one Redis, with no sticky sessions: any request may go to
 * either port. `npm run example:redis` (REDIS_URL overrides redis://127.0.0.1:6379) starts one
 * on :3000 and one on :3001 in this process, each with its own Redis connection, as two
 * separate servers would have. `PORT=3002 npm run example:redis` starts a single instance on
 * that port instead: run it in several shells to get several processes.
 *
 * Then chat across them (see docs in the README, "Several instances with Redis"):
 *   curl -s -X POST localhost:3000/chat/register -H 'content-type: application/json' -d '{"rooms":["lobby"]}'
 *   curl -s -H "authorization: Bearer $TOKEN" "localhost:3001/chat/poll?cursor=0"        # held...
 *   curl -s -X POST localhost:3000/chat/messages -H "authorization: Bearer $TOKEN" \
 *        -H 'content-type: application/json' -d '{"room":"lobby","data":"hi"}'          # ...answered
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { longPollChat } from '../lib/index.js'
import { RedisStore } from '../lib/stores/redis/index.js'

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const HOST = process.env.HOST ?? '127.0.0.1'

async function instance (port: number): Promise<FastifyInstance> {
  const app = Fastify({
    // Tokens are secrets: never log the authorization header.
    logger: { redact: ['req.headers.authorization'], base: { port } }
  })
  // The application owns its client; the store only makes (and closes) its own subscriber.
  const client = new Redis(REDIS_URL)
  client.on('error', (err) => { app.log.warn({ err: err.message }, 'redis connection error') })
  app.addHook('onClose', async () => { await client.quit().catch(() => client.disconnect()) })

  await app.register(longPollChat, {
    prefix: '/chat',
    // Every instance that should share sessions uses the same prefix.
    store: new RedisStore({ client, keyPrefix: 'lpc-example:' })
  })
  await app.listen({ port, host: HOST })
  return app
}

async function main (): Promise<void> {
  const ports = process.env.PORT ? [Number(process.env.PORT)] : [3000, 3001]
  const apps: FastifyInstance[] = []
  for (const port of ports) apps.push(await instance(port))

  // A broadcast from one instance reaches the sessions of all of them.
  const first = apps[0] as FastifyInstance
  const { recipients } = await first.longPoll.broadcast({ text: `instance :${ports[0]} is up` })
  first.log.info({ recipients, ports }, 'broadcast sent to every live session, whichever instance it uses')

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      Promise.all(apps.map((app) => app.close())).then(() => process.exit(0), () => process.exit(1))
    })
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
