/**
 * Shared by the Redis tests: whether they run, a client and the store loaded lazily (nothing of
 * Redis is loaded without REDIS_URL), key prefixes of their own and the cleanup of their keys,
 * and a private redis-server for outage tests (the shared one at REDIS_URL is never stopped).
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import type { Redis as RedisClient } from 'ioredis'
import type { RedisStore as RedisStoreClass } from '../../lib/stores/redis/index.js'

/** The Redis the tests use (redis://127.0.0.1:6379/0 in CI), or undefined when unset. */
export const REDIS_URL = process.env.REDIS_URL === '' ? undefined : process.env.REDIS_URL

/** The `skip` option of a test that needs REDIS_URL: false, or the reason it is skipped. */
export const redisSkip: false | string = REDIS_URL === undefined ? 'REDIS_URL not set' : false

/** The `skip` option of a test that starts its own redis-server. */
export const noRedisServer: false | string = spawnSync('redis-server', ['--version']).status !== 0 && 'redis-server is not installed'

/** ioredis and the Redis store, imported only when a test needs them. */
export async function loadRedis (): Promise<{ Redis: typeof RedisClient, RedisStore: typeof RedisStoreClass }> {
  const { Redis } = await import('ioredis')
  const { RedisStore } = await import('../../lib/stores/redis/index.js')
  return { Redis, RedisStore }
}

/** A key prefix nobody else uses: `<name>:<12 hex digits>:`. */
export function uniquePrefix (name: string): string {
  return `${name}:${randomBytes(6).toString('hex')}:`
}

/** Calls `each` with every SCAN batch of the keys under a prefix. */
async function scanPrefix (client: RedisClient, prefix: string, each: (keys: string[]) => unknown): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    await each(keys)
    cursor = next
  } while (cursor !== '0')
}

/** The keys under a prefix, sorted (SCAN may return a key twice while Redis rehashes: deduplicated). */
export async function keysOf (client: RedisClient, prefix: string): Promise<string[]> {
  const keys = new Set<string>()
  await scanPrefix(client, prefix, (batch) => { for (const key of batch) keys.add(key) })
  return [...keys].sort()
}

/** Deletes every key under a prefix, one SCAN batch at a time. */
export async function deleteKeys (client: RedisClient, prefix: string): Promise<void> {
  await scanPrefix(client, prefix, async (keys) => { if (keys.length > 0) await client.del(...keys) })
}

/** A TCP port on 127.0.0.1 that nothing listens on right now (for a private redis-server). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
    srv.on('error', reject)
  })
}

export interface PrivateRedis {
  port: number
  /** Starts it (again): empty, no persistence. */
  start (): void
  /** Shuts it down at once. */
  stop (): void
}

/** A redis-server of the test's own on a free port, started now and shut down at teardown. */
export async function privateRedis (t: { teardown (fn: () => unknown): void }): Promise<PrivateRedis> {
  const port = await freePort()
  const server: PrivateRedis = {
    port,
    start () {
      const r = spawnSync('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'yes'])
      if (r.status !== 0) throw new Error('redis-server did not start: ' + r.stderr.toString())
    },
    stop () {
      spawnSync('redis-cli', ['-p', String(port), 'shutdown', 'nosave'])
    }
  }
  server.start()
  t.teardown(() => server.stop())
  return server
}
