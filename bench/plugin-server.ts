/**
 * The plugin under test: Fastify 5 with fastify-long-poll-chat at /chat, with the in-memory store,
 * or the Redis store under a unique key prefix that is deleted afterwards.
 *
 * Options: the plugin's defaults except `rateLimit: false` (every scenario sends faster than a
 * person), `registerRateLimit: false` (every session of a scenario registers from 127.0.0.1; an
 * option of the plugin's next version, ignored by the current one), a `maxSessions` no scenario
 * reaches, the benchmark's `pollTimeout`, and what a scenario adds (`options`: the expiry storm's
 * `sessionTtl`, say). Options the running version does not know are passed all the same: the
 * current code ignores them, the next one applies them.
 */
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import longPollChat, { type LongPollChatOptions } from '../lib/index.js'
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

export interface PluginServerOptions {
  pollTimeout: number
  redisUrl?: string
  /** Plugin options on top of the benchmark's (known to the running version or not). */
  options?: Record<string, unknown>
  /** RedisStore options on top of `client` and `keyPrefix`. */
  storeOptions?: Record<string, unknown>
}

export async function createPluginServer (opts: PluginServerOptions): Promise<BenchServer> {
  const app = Fastify({ keepAliveTimeout: 72_000 })
  let client: Redis | undefined
  let store: RedisStore | undefined
  let redisCommands = 0
  const keyPrefix = `lpcbench:${process.pid}:${randomBytes(4).toString('hex')}:`
  if (opts.redisUrl !== undefined) {
    // BENCH_REDIS_AUTOPIPELINE=1: ioredis sends the commands issued in one tick as one write.
    client = new Redis(opts.redisUrl, { maxRetriesPerRequest: 2, enableAutoPipelining: process.env.BENCH_REDIS_AUTOPIPELINE === '1' })
    // Every command the store sends on its client (its subscriber connection only receives): the
    // round trips the instance makes to Redis.
    const send = client.sendCommand.bind(client)
    client.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
      redisCommands++
      return send(...args)
    }) as Redis['sendCommand']
    store = new RedisStore({ ...opts.storeOptions, client, keyPrefix })
  }
  const options = {
    prefix: '/chat',
    rateLimit: false,
    // The load registers every client from one address.
    registerRateLimit: false,
    maxSessions: 1_000_000,
    pollTimeout: opts.pollTimeout,
    ...opts.options,
    store
  }
  await app.register(longPollChat, options as LongPollChatOptions)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port

  return {
    port,
    http: app.server,
    broadcast: (data) => app.longPoll.broadcast(data),
    held: async () => (await app.longPoll.stats()).heldPolls,
    sessions: async () => (await app.longPoll.stats()).sessions,
    redisCommands: client === undefined ? undefined : () => redisCommands,
    async close () {
      await app.close()
      if (client !== undefined) {
        await deleteKeys(client, keyPrefix)
        await client.quit()
      }
    }
  }
}
