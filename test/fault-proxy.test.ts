/**
 * Faults between client and server (PROTOCOL.md, "Cursor" and `GET /poll`: "A response that is
 * lost in transit loses nothing"): a lossy proxy on 127.0.0.1 loses poll responses after the
 * server sent them, or cuts polls while they are held or being answered. Clients that re-poll
 * with their last acknowledged cursor get every message of the server's broadcasts exactly once,
 * in order, with nothing missed. With REDIS_URL, also two instances sharing one Redis store
 * behind the proxy, which sends each request to the next instance (no sticky sessions).
 */
import t, { type Test } from 'tap'
import type { Message } from '../types/index.js'
import { httpCall, register, pollOk, type Session } from './helpers/http.js'
import { deleteKeys, loadRedis, REDIS_URL, redisSkip, uniquePrefix } from './helpers/redis.js'
import { start, type TestServer } from './helpers/server.js'
import { sleep, waitHeld } from './helpers/wait.js'
import { lossyProxy, type LossyProxy, type LossyProxyOptions } from './helpers/fault-proxy.js'

interface ClientLog {
  ids: string[]
  missed: number
  failures: number
  polls: number
  cursor: string
}

/** Polls through the proxy until `total` messages arrived (or the deadline), re-polling with the last good cursor on failure. */
async function consume (proxy: LossyProxy, s: TestServer, token: string, cursor: string, total: number, deadline: number): Promise<ClientLog> {
  const log: ClientLog = { ids: [], missed: 0, failures: 0, polls: 0, cursor }
  while (log.ids.length < total && Date.now() < deadline) {
    log.polls++
    let body: { cursor: string, messages: Message[], missed: number } | null = null
    try {
      const res = await httpCall(proxy.port, s.prefix, { path: `/poll?cursor=${encodeURIComponent(log.cursor)}&wait=1000`, token })
      if (res.status === 200 && res.body !== null) body = res.body
      else if (res.status !== 200) throw new Error(`poll: ${res.status} ${res.text}`)
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code !== 'ECONNRESET' && (err as Error).message !== 'socket hang up' && code !== 'ERR_STREAM_PREMATURE_CLOSE') throw err
    }
    if (body === null) {
      // The response was lost or cut: poll again with the same cursor.
      log.failures++
      continue
    }
    log.cursor = body.cursor
    log.missed += body.missed
    for (const m of body.messages) log.ids.push(m.id)
  }
  return log
}

const SERVER_OPTIONS = { pollTimeout: 2000, maxMessagesPerPoll: 40, messageTtl: 60_000, rateLimit: false as const }

interface Scenario { proxy: LossyProxy, logs: ClientLog[], published: string[], s: TestServer, sessions: Session[] }

/**
 * `clients` sessions consume `total` broadcasts through a lossy proxy in front of `servers` (in
 * turn); the broadcasts are published on the servers in turn too.
 */
async function scenario (t: Test, servers: TestServer[], proxyOpts: LossyProxyOptions, total: number, clients: number): Promise<Scenario> {
  const proxy = await lossyProxy(servers.map((x) => x.port as number), proxyOpts)
  t.teardown(() => proxy.close())
  const s = servers[0]
  const sessions = await Promise.all(Array.from({ length: clients }, () => register(s)))
  const deadline = Date.now() + 25_000
  const consumers = sessions.map((x) => consume(proxy, s, x.token, x.cursor, total, deadline))

  const published: string[] = []
  for (let i = 0; i < total; i++) {
    published.push((await servers[i % servers.length].app.longPoll.broadcast({ i })).id)
    // Bursts, then a paced tail, so that lost responses include both backlogs and held polls woken by a publish.
    if (i < total - 40) {
      if (i % 25 === 24) await sleep(1)
    } else {
      await sleep(4)
    }
  }
  const logs = await Promise.all(consumers)
  return { proxy, logs, published, s, sessions }
}

/** One in-memory instance. */
async function memoryServer (t: Test, total: number): Promise<TestServer[]> {
  return [await start(t, { ...SERVER_OPTIONS, maxMailboxMessages: total + 100 }, { listen: true })]
}

function checkLogs (t: Test, logs: ClientLog[], published: string[]): void {
  t.equal(new Set(published).size, published.length, 'broadcast ids are unique')
  logs.forEach((log, k) => {
    const dup = log.ids.length - new Set(log.ids).size
    t.equal(dup, 0, `client ${k}: no duplicates`)
    t.equal(log.missed, 0, `client ${k}: nothing missed`)
    t.equal(log.ids.length, published.length, `client ${k}: received ${log.ids.length} of ${published.length}`)
    t.ok(log.ids.every((id, i) => id === published[i]), `client ${k}: every message, in publishing order`)
    t.ok(log.failures > 0, `client ${k}: ${log.failures} of its ${log.polls} polls failed and were retried`)
  })
}

/** Each client acknowledges its last cursor (directly, not through the proxy): nothing is left to send or keep. */
async function acknowledgeAll (t: Test, s: TestServer, sessions: Session[], logs: ClientLog[]): Promise<void> {
  for (const [k, log] of logs.entries()) {
    const last = await pollOk(s, sessions[k].token, { cursor: log.cursor, wait: 0 })
    t.same(last.messages, [], `client ${k}: nothing after its last cursor`)
  }
  // Store v2 keeps each broadcast once, in the log of everyone, for messageTtl whoever read it
  // (memory freed by messageTtl: test/limits-memory.test.ts): at most one entry per broadcast.
  const queued = (await s.app.longPoll.stats()).queued
  t.ok(queued <= logs[0].ids.length, `every broadcast is kept at most once, not once per client (${queued} kept)`)
}

t.test('every 3rd poll response is lost after the server sent it: 3 000 broadcasts reach 3 clients exactly once, in order', async (t) => {
  const TOTAL = 3000
  const { proxy, logs, published, s, sessions } = await scenario(t, await memoryServer(t, TOTAL), { mode: 'after-response', every: 3 }, TOTAL, 3)
  checkLogs(t, logs, published)
  const st = proxy.stats
  t.ok(st.lostResponses >= Math.floor(st.polls / 3) - 3, `the proxy lost ${st.lostResponses} of ${st.polls} poll responses`)
  t.ok(st.lostMessages >= 100, `lost responses carried ${st.lostMessages} messages, all delivered again`)

  // Acknowledge the last batch: nothing stays queued, and each message counted as delivered once per client.
  await acknowledgeAll(t, s, sessions, logs)
  const stats = await s.app.longPoll.stats()
  t.equal(stats.delivered, TOTAL * logs.length, 'stats.delivered counts each message once per client, however often it was re-sent')
  t.equal(stats.dropped, 0, 'nothing dropped')
})

t.test('every 3rd poll is cut a few ms after it was sent (held, being answered, or answered): 1 500 broadcasts, nothing lost or repeated', async (t) => {
  const TOTAL = 1500
  const { proxy, logs, published, s, sessions } = await scenario(t, await memoryServer(t, TOTAL), { mode: 'cut-early', every: 3, cutAfterMs: (i) => i % 7 }, TOTAL, 3)
  checkLogs(t, logs, published)
  t.ok(proxy.stats.cutEarly > 0, `${proxy.stats.cutEarly} polls were cut before the server's answer reached the proxy`)
  await acknowledgeAll(t, s, sessions, logs)
  t.ok(await waitHeld(s, 0), 'no held poll is left behind by the cut connections')
})

t.test('Redis: two instances behind the lossy proxy, requests and broadcasts alternating between them', { skip: redisSkip }, async (t) => {
  const TOTAL = 600
  const { Redis, RedisStore } = await loadRedis()
  const prefix = uniquePrefix('lpcfault')
  const clients = [new Redis(REDIS_URL as string), new Redis(REDIS_URL as string)]
  const servers: TestServer[] = []
  t.teardown(async () => {
    for (const x of servers) await x.close()
    await deleteKeys(clients[0], prefix)
    for (const c of clients) c.disconnect()
  })
  for (const client of clients) {
    const store = new RedisStore({ client, keyPrefix: prefix })
    servers.push(await start(t, { ...SERVER_OPTIONS, maxMailboxMessages: TOTAL + 100, store }, { listen: true }))
  }
  const { proxy, logs, published, s, sessions } = await scenario(t, servers, { mode: 'after-response', every: 3 }, TOTAL, 3)
  checkLogs(t, logs, published)
  t.ok(proxy.stats.lostMessages >= 100, `lost responses carried ${proxy.stats.lostMessages} messages, all delivered again`)
  await acknowledgeAll(t, s, sessions, logs)
  const stats = await s.app.longPoll.stats()
  t.equal(stats.delivered, TOTAL * logs.length, 'stats.delivered counts each message once per client')
  t.equal(stats.dropped, 0, 'nothing dropped')
})
