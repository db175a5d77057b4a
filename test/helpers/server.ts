/**
 * Starts the plugin in a fresh Fastify instance for a test: listening on 127.0.0.1 (real HTTP)
 * or not (requests go through `inject`); closed at teardown. Requests: test/helpers/http.ts.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import longPollChat from '../../lib/index.js'
import type { LongPollChatOptions } from '../../types/index.js'
import { httpCall, injectRequest, type Reply, type RequestOptions } from './http.js'
import { deleteKeys, loadRedis, REDIS_URL, uniquePrefix } from './redis.js'

/** The part of a tap `Test` the helpers need. */
export interface TestLike {
  teardown (fn: () => unknown): void
}

export interface TestServer {
  app: FastifyInstance
  prefix: string
  /** The listening port, or null when requests go through `inject`. */
  port: number | null
  /** Closes the app once (later calls, and the teardown, do nothing). */
  close (): Promise<void>
  request (req: RequestOptions): Promise<Reply>
}

export interface StartOptions {
  /** Listen on 127.0.0.1 (default false: use inject). */
  listen?: boolean
  /** The port to listen on (default 0: any free one). */
  port?: number
  fastify?: FastifyServerOptions
}

export const DEFAULT_PREFIX = '/chat'

/**
 * With `PROTOCOL_STORE=redis` (and `REDIS_URL`), servers started without an explicit `store` use
 * a RedisStore on a key prefix of their own (its keys are deleted at teardown), so the protocol
 * tests can run against the Redis store too: `PROTOCOL_STORE=redis REDIS_URL=redis://127.0.0.1:6379/0
 * npx tap test/protocol-*.test.ts`. ioredis is loaded only then.
 */
async function protocolStore (t: TestLike): Promise<LongPollChatOptions['store']> {
  if (process.env.PROTOCOL_STORE !== 'redis') return undefined
  if (REDIS_URL === undefined) throw new Error('PROTOCOL_STORE=redis needs REDIS_URL')
  const { Redis, RedisStore } = await loadRedis()
  const client = new Redis(REDIS_URL)
  const keyPrefix = uniquePrefix('lpc-protocol-test')
  t.teardown(async () => {
    await deleteKeys(client, keyPrefix)
    await client.quit()
  })
  return new RedisStore({ client, keyPrefix })
}

/** Starts a Fastify instance with the plugin; it is closed in `t.teardown`. */
export async function start (t: TestLike, options: LongPollChatOptions = {}, startOptions: StartOptions = {}): Promise<TestServer> {
  const store = options.store ?? await protocolStore(t) // registered first: its teardown runs after the app's close
  const app = Fastify(startOptions.fastify ?? {})
  let closed: Promise<void> | null = null
  const close = async (): Promise<void> => {
    closed ??= app.close()
    await closed
  }
  t.teardown(close)
  const opts: LongPollChatOptions = { prefix: DEFAULT_PREFIX, ...options, ...(store === undefined ? {} : { store }) }
  await app.register(longPollChat, opts)
  let port: number | null = null
  if (startOptions.listen === true) {
    await app.listen({ port: startOptions.port ?? 0, host: '127.0.0.1' })
    const address = app.server.address()
    if (address === null || typeof address === 'string') throw new Error('unexpected server address')
    port = address.port
  } else {
    await app.ready()
  }
  const prefix = opts.prefix ?? ''
  const listening = port
  return {
    app,
    prefix,
    port,
    close,
    request: (req) => listening === null ? injectRequest(app, prefix, req) : httpCall(listening, prefix, req)
  }
}

export interface LogEntry {
  level: number
  msg?: string
  err?: { message?: string, type?: string }
  [key: string]: unknown
}

/** A Fastify logger (`start(t, opts, { fastify: { logger } })`) that keeps its entries for the test. */
export function recordingLogger (level = 'info'): { logger: { level: string, stream: { write (line: string): void } }, entries: LogEntry[] } {
  const entries: LogEntry[] = []
  return { logger: { level, stream: { write (line: string) { entries.push(JSON.parse(line) as LogEntry) } } }, entries }
}
