/**
 * The plugin under test: Fastify 5 with fastify-long-poll-chat at /chat, rate limit off, with the
 * in-memory store, or the Redis store under a unique key prefix that is deleted afterwards.
 */
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import longPollChat from '../lib/index.js'
import { RedisStore } from '../lib/stores/redis/index.js'
import type { BenchServer } from './server-proc.js'

async function deleteKeys (client: Redis, prefix: string): Promise<number> {
  let cursor = '0'
  let deleted = 0
  for (let round = 0; round < 100_000; round++) {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    if (keys.length > 0) deleted += await client.unlink(...keys)
    cursor = next
    if (cursor === '0') break
  }
  return deleted
}

export async function createPluginServer (opts: { pollTimeout: number, redisUrl?: string }): Promise<BenchServer> {
  const app = Fastify({ keepAliveTimeout: 72_000 })
  let client: Redis | undefined
  let store: RedisStore | undefined
  const keyPrefix = `lpcbench:${process.pid}:${randomBytes(4).toString('hex')}:`
  if (opts.redisUrl !== undefined) {
    // BENCH_REDIS_AUTOPIPELINE=1: ioredis sends the commands issued in one tick as one write.
    client = new Redis(opts.redisUrl, { maxRetriesPerRequest: 2, enableAutoPipelining: process.env.BENCH_REDIS_AUTOPIPELINE === '1' })
    store = new RedisStore({ client, keyPrefix })
  }
  await app.register(longPollChat, {
    prefix: '/chat',
    rateLimit: false,
    maxSessions: 1_000_000,
    pollTimeout: opts.pollTimeout,
    store
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port

  return {
    port,
    http: app.server,
    broadcast: (data) => app.longPoll.broadcast(data),
    held: async () => (await app.longPoll.stats()).heldPolls,
    sessions: async () => (await app.longPoll.stats()).sessions,
    async close () {
      await app.close()
      if (client !== undefined) {
        await deleteKeys(client, keyPrefix)
        await client.quit()
      }
    }
  }
}
