/**
 * What one publish costs Redis with the Redis store, for audiences of different sizes (issue 10:
 * at most 2 ms of Redis CPU for a broadcast to 20 000 sessions, at most 3× the cost with 1 000).
 *
 *   npx tsx bench/redis-publish.ts            # N = 1000 and 20000, 300 publishes each
 *   SIZES=1000,20000,100000 PUBLISHES=500 npx tsx bench/redis-publish.ts
 *
 * It starts a private redis-server (no persistence) on a free port, so that nothing else runs
 * there: for each N it creates N sessions (all in one room), then times PUBLISHES broadcasts
 * and PUBLISHES room messages, one at a time (and PUBLISHES reads, each of another session, of
 * the two messages it has), and reads Redis's own figures around them:
 * INFO commandstats (usec of EVALSHA: time inside the scripts), INFO cpu (the server process's
 * user + sys CPU: parsing, replies, pub/sub included) and SLOWLOG (threshold 0: the longest
 * call). Nobody polls meanwhile: a publish's cost does not depend on held polls. It also prints
 * the memory a session and a message take.
 */
import { spawnSync } from 'node:child_process'
import { randomBytes, createHash } from 'node:crypto'
import { createServer } from 'node:net'
import { env } from 'node:process'
import { Redis } from 'ioredis'
import { RedisStore } from '../lib/stores/redis/index.js'
import type { LogTarget } from '../lib/stores/store.js'

const SIZES = (env.SIZES ?? '1000,20000').split(',').map(Number)
const PUBLISHES = Math.min(Number(env.PUBLISHES ?? 300), Math.min(...SIZES) - 20)
const MEMORY_MESSAGES = 1000

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
    srv.on('error', reject)
  })
}

interface Figures {
  /** µs inside EVALSHA per publish (INFO commandstats). */
  script: number
  /** µs of Redis server CPU per publish (INFO cpu, user + sys). */
  cpu: number
  /** The longest single call, µs (SLOWLOG). */
  max: number
}

async function measure (c: Redis, publishOnce: () => Promise<unknown>): Promise<Figures> {
  const evalsha = async (): Promise<number> => Number(/cmdstat_evalsha:calls=\d+,usec=(\d+)/.exec(String(await c.info('commandstats')))?.[1] ?? 0)
  const cpu = async (): Promise<number> => {
    const info = String(await c.info('cpu'))
    const f = (name: string): number => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0)
    return (f('used_cpu_user') + f('used_cpu_sys')) * 1e6
  }
  for (let i = 0; i < 20; i++) await publishOnce() // warm-up
  await c.config('SET', 'slowlog-log-slower-than', '0')
  await c.config('SET', 'slowlog-max-len', String(PUBLISHES * 2))
  await c.slowlog('RESET')
  const [s0, c0] = [await evalsha(), await cpu()]
  for (let i = 0; i < PUBLISHES; i++) await publishOnce()
  const [s1, c1] = [await evalsha(), await cpu()]
  const log = await c.slowlog('GET', PUBLISHES * 2) as Array<[number, number, number, string[]]>
  await c.config('SET', 'slowlog-log-slower-than', '10000')
  const max = Math.max(...log.filter((e) => e[3][0]?.toLowerCase() === 'evalsha').map((e) => e[2]))
  return { script: (s1 - s0) / PUBLISHES, cpu: (c1 - c0) / PUBLISHES, max }
}

async function main (): Promise<void> {
  const port = await freePort()
  const started = spawnSync('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'yes'])
  if (started.status !== 0) throw new Error('redis-server did not start: ' + started.stderr.toString())
  const c = new Redis({ host: '127.0.0.1', port, retryStrategy: () => null })
  c.on('error', () => {})
  try {
    const rows: string[] = []
    const memory: string[] = []
    for (const n of SIZES) {
      await c.flushall()
      const store = new RedisStore({ client: c, keyPrefix: 'bench:' })
      await store.init({
        messageTtl: 60_000,
        sessionTtl: 300_000,
        maxMailboxMessages: 1000,
        maxSessions: Math.max(100_000, n),
        maxRoomsPerSession: 100,
        maxSessionsPerUser: 0,
        history: { maxMessages: 100, maxAge: 3_600_000 }
      }, () => {})
      const now = Date.now()
      const used = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(String(await c.info('memory')))?.[1])
      const m0 = await used()
      const ids: string[] = []
      for (let i = 0; i < n; i += 500) {
        await Promise.all(Array.from({ length: Math.min(500, n - i) }, () => store.createSession({
          id: ids[ids.push(randomBytes(12).toString('base64url')) - 1] as string,
          tokenHash: createHash('sha256').update(randomBytes(32)).digest('hex'),
          profile: { name: 'someone' },
          user: null,
          context: null,
          rooms: ['lobby']
        }, now)))
      }
      const json = JSON.stringify({ id: 'x', type: 'message', from: null, room: null, to: null, data: 'hello, everyone', ts: now })
      const publish = (target: LogTarget) => async (): Promise<number> => await store.publish({ id: randomBytes(8).toString('hex'), ts: Date.now(), json, target }, Date.now())
      const m1 = await used()
      if (await publish({ kind: 'all' })() !== n) throw new Error('not every session counted')
      await publish({ kind: 'room', room: 'lobby' })()
      // A read (a woken poll's): the broadcast and the room message above to answer, for a session
      // in `all`, its inbox and one room; each read is of another session.
      let next = 0
      const reads = await measure(c, async () => await store.read(ids[next++] as string, null, { limit: 500, maxBytes: 262_144 }, Date.now()))
      // Memory per message: MEMORY_MESSAGES (≤ maxMailboxMessages) in the log of everyone.
      for (let i = 1; i < MEMORY_MESSAGES; i++) await publish({ kind: 'all' })()
      const base = store.keyBase
      const usage = async (key: string): Promise<number> => Number(await c.memory('USAGE', key, 'SAMPLES', 0) ?? 0)
      const perMessage = await usage(base + 'l:all') / await c.zcard(base + 'l:all')
      // Memory per session: its own keys (a sample) and its entries in the shared sorted sets.
      const sample = (await c.zrange(base + 'sessions', 0, 99)) as string[]
      let own = 0
      for (const id of sample) {
        const tok = await c.hget(base + 's:' + id, 'tok')
        own += await usage(base + 's:' + id) + await usage(base + 't:' + tok) + await usage(base + 'sr:' + id)
      }
      const shared = (await usage(base + 'sessions') + await usage(base + 'mb:all') + await usage(base + 'mb:r:lobby')) / n
      memory.push(`| ${n} | ${(own / sample.length + shared).toFixed(0)} | ${(m1 - m0) / n | 0} | ${(perMessage - json.length).toFixed(0)} + ${json.length} of JSON |`)
      const all = await measure(c, publish({ kind: 'all' }))
      const room = await measure(c, publish({ kind: 'room', room: 'lobby' }))
      for (const [what, f] of [['broadcast', all], ['room', room], ['read of 2 messages', reads]] as const) {
        rows.push(`| ${n} | ${what} | ${f.script.toFixed(1)} | ${f.cpu.toFixed(1)} | ${f.max} |`)
      }
      await store.close()
    }
    console.log(`Redis ${String(await c.info('server')).match(/redis_version:(\S+)/)?.[1]}, ${PUBLISHES} publishes per row, one at a time`)
    console.log('| sessions | call | µs in the script (commandstats) | µs of Redis CPU (INFO cpu) | longest call, µs (SLOWLOG) |')
    console.log('| --- | --- | --- | --- | --- |')
    for (const r of rows) console.log(r)
    console.log('\nMemory: a session in one room with a small profile (MEMORY USAGE of its keys and its share of the sorted sets;')
    console.log('INFO used_memory delta per session created), a message in a log (MEMORY USAGE of the log / entries)')
    console.log('| sessions | bytes per session (MEMORY USAGE) | bytes per session (used_memory) | bytes per message |')
    console.log('| --- | --- | --- | --- |')
    for (const r of memory) console.log(r)
  } finally {
    await c.shutdown('NOSAVE').catch(() => {})
    c.disconnect()
  }
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
