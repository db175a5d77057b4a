/**
 * The Redis store: the store contract v2, plus what only a shared store has (its key layout and
 * cleanup, the cost of a publish and of a poll cycle in commands, several instances on one
 * Redis, outages). Needs a Redis: REDIS_URL=redis://127.0.0.1:6379/0 (skipped, with the reason,
 * without it); ioredis and the store are imported lazily, so that without REDIS_URL nothing of
 * Redis is loaded. Tests that count commands run on a private redis-server of their own.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import type { Redis as RedisClient } from 'ioredis'
import type { RedisStore as RedisStoreClass } from '../lib/stores/redis/index.js'
import type { LogTarget, NewSession, OutgoingMessage, ReadResult, StoreConfig, StoreEvent } from '../lib/stores/store.js'
import { deleteKeys, keysOf, loadRedis, noRedisServer, privateRedis, REDIS_URL, redisSkip, uniquePrefix } from './helpers/redis.js'
import { sha256 } from './helpers/store.js'
import { storeContract } from './store-contract/index.js'
import { sleep, waitFor } from './helpers/wait.js'

const CONFIG: StoreConfig = {
  messageTtl: 30_000,
  sessionTtl: 60_000,
  maxMailboxMessages: 50,
  maxSessions: 1000,
  maxRoomsPerSession: 5,
  maxSessionsPerUser: 0,
  history: null
}
const ALL = { limit: 1000, maxBytes: 1 << 30 }

function message (target: LogTarget, data: unknown, ts: number): OutgoingMessage {
  const id = 'm-' + randomBytes(6).toString('hex')
  return { id, ts, json: JSON.stringify({ id, type: 'message', from: null, room: null, to: null, data, ts }), target }
}

function newSession (rooms: string[] = [], profile: Record<string, unknown> | null = null, user: string | null = null): NewSession {
  const token = randomBytes(16).toString('hex')
  return { id: 's-' + randomBytes(6).toString('hex'), tokenHash: sha256(token), profile, user, context: null, rooms }
}

function data (r: ReadResult | 'bad-cursor' | null): unknown[] {
  if (r === null || r === 'bad-cursor') throw new Error(`read failed: ${r}`)
  return r.messages.map((m) => (JSON.parse(m) as { data: unknown }).data)
}

t.test('RedisStore', { skip: redisSkip }, async (t) => {
  const { Redis, RedisStore } = await loadRedis()
  const url = REDIS_URL as string

  /** A client for the test, quit (and its prefix's keys deleted) in teardown. */
  function client (tt: typeof t, prefix: string, options: { port?: number } = {}): RedisClient {
    const c = options.port === undefined ? new Redis(url) : new Redis({ host: '127.0.0.1', port: options.port, retryStrategy: () => 50 })
    c.on('error', () => {})
    tt.teardown(async () => {
      if (c.status === 'ready') {
        await deleteKeys(c, prefix)
        await c.quit()
      } else {
        c.disconnect()
      }
    })
    return c
  }

  async function started (tt: typeof t, c: RedisClient, keyPrefix: string, config: Partial<StoreConfig> = {},
    opts: { gcMargin?: number } = {}): Promise<{ store: RedisStoreClass, events: StoreEvent[] }> {
    const store = new RedisStore({ client: c, keyPrefix, ...opts })
    const events: StoreEvent[] = []
    await store.init({ ...CONFIG, ...config }, (e) => events.push(e))
    tt.teardown(() => store.close())
    return { store, events }
  }

  /** Records the commands `c` sends (their names) while `fn` runs. */
  async function commandsOf (c: RedisClient, fn: () => Promise<unknown>): Promise<string[]> {
    const sent: string[] = []
    const original = c.sendCommand.bind(c)
    c.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
      sent.push(command.name)
      return (original as (...args: unknown[]) => unknown)(command, ...rest)
    }) as typeof c.sendCommand
    try {
      await fn()
    } finally {
      c.sendCommand = original
    }
    return sent
  }

  storeContract(t, 'redis', async () => {
    const keyPrefix = uniquePrefix('lpctest')
    const c = new Redis(url)
    c.on('error', () => {})
    return {
      store: new RedisStore({ client: c, keyPrefix }),
      cleanup: async () => {
        await deleteKeys(c, keyPrefix)
        await c.quit()
      }
    }
  }, { modelRuns: 30 })

  t.test('the constructor checks its options', async (t) => {
    t.throws(() => new RedisStore({} as never), TypeError)
    const c = client(t, uniquePrefix('lpctest'))
    t.throws(() => new RedisStore({ client: c, keyPrefix: 1 as never }), TypeError)
    t.throws(() => new RedisStore({ client: c, gcMargin: -1 }), TypeError)
    await t.rejects(new RedisStore({ client: c }).stats(), 'methods before init fail')
  })

  t.test('every key is under the key base: the prefix and one hash tag', async (t) => {
    for (const [keyPrefix, base] of [['lpctest-tag:' + randomBytes(4).toString('hex') + ':', null], ['{lpctest-' + randomBytes(4).toString('hex') + '}:', 'same']] as const) {
      const c = client(t, keyPrefix)
      const { store } = await started(t, c, keyPrefix, { history: { maxMessages: 10, maxAge: 60_000 } })
      const expected = base === 'same' ? keyPrefix : keyPrefix + '{lpc}:'
      t.equal(store.keyBase, expected, `prefix ${keyPrefix}: key base ${expected}`)
      const now = Date.now()
      const a = newSession(['r'], null, 'ann')
      const b = newSession(['r', 'q'])
      await store.createSession(a, now, { bucket: 'register', max: 10, window: 60_000, key: '127.0.0.1' })
      await store.createSession(b, now)
      await store.authenticate(a.tokenHash, now, { bucket: 'messages', max: 10, window: 1000 })
      for (const target of [{ kind: 'all' }, { kind: 'room', room: 'r' }, { kind: 'session', id: a.id }, { kind: 'user', user: 'ann' }] as const) {
        await store.publish(message(target, 1, now), now)
      }
      await store.publish(message({ kind: 'room', room: 'empty' }, 'kept as history', now), now)
      await store.leave(a.id, 'r', now)
      const keys = await keysOf(c, keyPrefix)
      t.ok(keys.length >= 15, `sessions, token, logs, members, rates, counters (${keys.length} keys)`)
      t.same(keys.filter((k) => !k.startsWith(expected)), [], 'all of them start with the key base')
    }
  })

  t.test('every key of a session is gone once it is swept, and the sweep frees expired messages (real time)', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const { store } = await started(t, c, prefix, { messageTtl: 100, sessionTtl: 200 }, { gcMargin: 1000 })
    const base = store.keyBase
    t.same(await keysOf(c, prefix), [], 'nothing before the first session')

    const a = newSession(['r1', 'r2'], { name: 'A' }, 'ann')
    const b = newSession(['r1'])
    t.equal((await store.createSession(a, Date.now())).ok, true)
    t.equal((await store.createSession(b, Date.now())).ok, true)
    await store.publish(message({ kind: 'all' }, 1, Date.now()), Date.now())
    await store.publish(message({ kind: 'room', room: 'r1' }, 2, Date.now()), Date.now())
    await store.publish(message({ kind: 'session', id: a.id }, 3, Date.now()), Date.now())
    await store.publish(message({ kind: 'user', user: 'ann' }, 4, Date.now()), Date.now())
    t.same(data(await store.read(b.id, 0, { limit: 1, maxBytes: 1 << 20 }, Date.now())), [1], 'one delivered, one left unacknowledged')
    await store.leave(b.id, 'r1', Date.now()) // with 2 unread: a copy of it
    const during = await keysOf(c, prefix)
    t.ok(during.length >= 15, `session, token, room, log, member and copy keys exist (${during.length})`)
    const logs = during.filter((k) => k.startsWith(base + 'l:'))
    t.equal(logs.length, 5, 'the logs of everyone, of r1, a\'s inbox, ann\'s, b\'s copy of r1')
    for (const k of logs) t.ok(await c.pttl(k) > 0, `${k.slice(base.length)} has a backstop TTL`)

    await sleep(250)
    t.same(await store.authenticate(a.tokenHash, Date.now()), { ok: false, reason: 'unknown' }, 'expired after sessionTtl, before the sweep')
    const swept = await store.sweep(Date.now(), 100)
    t.same(swept.map((s) => s.id).sort(), [a.id, b.id].sort(), 'both swept')
    const left = (await keysOf(c, prefix)).map((k) => k.slice(base.length))
    t.same(left.filter((k) => !['g', 'joins', 'last', 'stats', 'lx', 'l:all'].includes(k)), [],
      `right after the sweep only the global keys and the log of everyone remain (${left.join(' ')})`)
    t.same(await store.stats(), { sessions: 0, queued: 0, delivered: 1, dropped: 0 }, 'the sweep freed the expired messages of everyone')
    t.same(left, ['g', 'joins', 'last', 'stats'], 'only the sequence, the counts of everyone\'s log and join order, the counters')
  })

  t.test('a publish is one command, stores the message once and wakes with the log\'s name only', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const { store, events } = await started(t, c, prefix, { maxSessions: 10_000 })
    const now = Date.now()
    const ids: string[] = []
    for (let i = 0; i < 30; i++) {
      const s = newSession(i % 2 === 0 ? ['even'] : [], null, i < 3 ? 'ann' : null)
      await store.createSession(s, now)
      ids.push(s.id)
    }
    const base = store.keyBase
    let n = 0
    t.same(await commandsOf(c, async () => { n = await store.publish(message({ kind: 'all' }, 'to all', now), now) }), ['evalsha'], 'one command for 30 recipients')
    t.equal(n, 30)
    t.same(await commandsOf(c, async () => { n = await store.publish(message({ kind: 'room', room: 'even' }, 'to even', now), now) }), ['evalsha'], 'one for a room of 15')
    t.equal(n, 15)
    t.same(await commandsOf(c, async () => { n = await store.publish(message({ kind: 'user', user: 'ann' }, 'to ann', now), now) }), ['evalsha'], 'one for a user of 3 sessions')
    t.equal(n, 3)
    t.equal(await c.zcard(base + 'l:all'), 1, 'the broadcast is one entry, in the log of everyone')
    t.equal(await c.zcard(base + 'l:r:even'), 1)
    t.equal(await c.zcard(base + 'l:u:ann'), 1)
    await waitFor(() => events.filter((e) => e.type === 'wake').length === 3, 'the wakes')
    t.same(events.filter((e) => e.type === 'wake'), [{ type: 'wake', log: 'all' }, { type: 'wake', log: 'r:even' }, { type: 'wake', log: 'u:ann' }],
      'one wake per publish, naming the log, never the recipients')
    for (const [i, id] of ids.entries()) {
      const expected = ['to all', ...(i % 2 === 0 ? ['to even'] : []), ...(i < 3 ? ['to ann'] : [])]
      t.same(data(await store.read(id, null, ALL, now)), expected, `mailbox ${i}`)
    }
  })

  t.test('a publish runs the same Redis commands whatever the audience (private redis-server)', { skip: noRedisServer }, async (t) => {
    const redis = await privateRedis(t)
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix, { port: redis.port })
    await waitFor(async () => await c.ping().then(() => true, () => false), 'the private redis-server')
    const { store } = await started(t, c, prefix, { maxSessions: 10_000 })
    const now = Date.now()
    /** The calls of each command Redis ran (INFO commandstats) while `fn` ran. */
    const calls = async (fn: () => Promise<unknown>): Promise<Record<string, number>> => {
      const read = async (): Promise<Map<string, number>> => new Map([...String(await c.info('commandstats')).matchAll(/cmdstat_(\w+(?:\|\w+)?):calls=(\d+)/g)]
        .map((m) => [m[1] as string, Number(m[2])]))
      const before = await read()
      await fn()
      const after = await read()
      const out: Record<string, number> = {}
      for (const [name, count] of after) {
        const d = count - (before.get(name) ?? 0)
        if (d > 0 && name !== 'info') out[name] = d
      }
      return out
    }
    const broadcast = async (): Promise<Record<string, number>> => {
      await store.publish(message({ kind: 'all' }, 'warm', now), now) // the log exists, its head is indexed
      return await calls(async () => { await store.publish(message({ kind: 'all' }, 'x', now), now) })
    }
    const room = async (): Promise<Record<string, number>> => {
      await store.publish(message({ kind: 'room', room: 'big' }, 'warm', now), now)
      return await calls(async () => { await store.publish(message({ kind: 'room', room: 'big' }, 'x', now), now) })
    }
    for (let i = 0; i < 10; i++) await store.createSession(newSession(['big']), now)
    const [all10, room10] = [await broadcast(), await room()]
    const batch = Array.from({ length: 100 }, (_, i) => i)
    for (let k = 0; k < 20; k++) await Promise.all(batch.map(() => store.createSession(newSession(['big']), now)))
    const [all2010, room2010] = [await broadcast(), await room()]
    t.same(all2010, all10, `a broadcast to 2010 sessions runs what it runs for 10: ${JSON.stringify(all10)}`)
    t.same(room2010, room10, `a room publish too: ${JSON.stringify(room10)}`)
    t.equal(all10.evalsha, 1)
    t.notOk(Object.keys(all10).some((k) => /^(smembers|zrange|zrangebyscore|hgetall)$/.test(k)), 'no command that lists members')
  })

  t.test('a poll cycle is two commands: the poll, then the read that answers or the end of the hold', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const { store, events } = await started(t, c, prefix)
    const now = Date.now()
    const a = newSession(['r'])
    await store.createSession(a, now)
    let seq = 0
    t.same(await commandsOf(c, async () => {
      const p = await store.poll(a.tokenHash, 0, 5000, ALL, now)
      if (!p.ok) throw new Error('poll failed')
      seq = p.seq
    }), ['evalsha'], 'poll: token, read, hold in one command')
    t.ok(seq > 0, 'held')
    await waitFor(() => events.some((e) => e.type === 'poll' && e.seq === seq), 'the poll event')
    await store.publish(message({ kind: 'room', room: 'r' }, 'hi', now + 1), now + 1)
    let r: ReadResult | 'bad-cursor' | null = null
    t.same(await commandsOf(c, async () => { r = await store.read(a.id, 0, ALL, now + 2, seq) }), ['evalsha'], 'woken: one read, which ends the hold')
    t.same(data(r), ['hi'])
    t.same(await store.sweep(now + 2 + CONFIG.sessionTtl - 1, 100), [], 'idle from the answer on')
    t.equal((await store.sweep(now + 2 + CONFIG.sessionTtl + 1, 100)).length, 1, 'the hold was ended by the read')

    const b = newSession()
    await store.createSession(b, now)
    const p = await store.poll(b.tokenHash, 0, 1000, ALL, now)
    t.same(await commandsOf(c, async () => { await store.endPoll(b.id, p.ok ? p.seq : 0, now + 1000) }), ['evalsha'], 'timed out: one endPoll')
  })

  t.test('logs are trimmed by age by the sweep without anyone reading or writing them', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const { store } = await started(t, c, prefix, { messageTtl: 10_000, maxMailboxMessages: 1000, history: { maxMessages: 5, maxAge: 20_000 } })
    const base = store.keyBase
    const T0 = Date.now()
    const a = newSession(['r'])
    const b = newSession(['q'])
    await store.createSession(a, T0)
    await store.createSession(b, T0)
    for (let i = 0; i < 20; i++) await store.publish(message({ kind: 'room', room: 'r' }, i, T0 + i), T0 + i)
    for (let i = 0; i < 20; i++) await store.publish(message({ kind: 'room', room: 'q' }, i, T0 + 100 + i), T0 + 100 + i)
    for (let i = 0; i < 5; i++) await store.publish(message({ kind: 'session', id: a.id }, i, T0 + i), T0 + i)
    t.equal((await store.stats()).queued, 45)
    await store.sweep(T0 + 5000, 100)
    t.equal((await store.stats()).queued, 45, 'nothing expired yet')
    await store.sweep(T0 + 10_200, 100)
    t.same([await c.zcard(base + 'l:r:r'), await c.zcard(base + 'l:r:q'), await c.zcard(base + 'l:s:' + a.id)], [5, 5, 0],
      'past messageTtl: what history keeps (the last 5 of each room) and nothing of the inbox')
    await store.sweep(T0 + 20_050, 100)
    t.same([await c.zcard(base + 'l:r:r'), await c.zcard(base + 'l:r:q')], [0, 5], 'past history.maxAge: r is empty, q not yet')
    await store.sweep(T0 + 20_200, 100)
    t.equal((await store.stats()).queued, 0, 'then nothing')
    t.equal(await c.zcard(base + 'lx'), 0, 'and the index of log heads is empty')
  })

  t.test('a former member keeps a copy of what it left unread: the room\'s log is trimmed and deleted all the same', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const { store } = await started(t, c, prefix, { maxMailboxMessages: 20 })
    const base = store.keyBase
    const now = Date.now()
    const a = newSession(['r'])
    const b = newSession(['r'])
    await store.createSession(a, now)
    await store.createSession(b, now)
    for (let i = 0; i < 5; i++) await store.publish(message({ kind: 'room', room: 'r' }, i, now), now)
    await store.leave(a.id, 'r', now)
    const copies = (await keysOf(c, base + 'l:x:')).length
    t.equal(copies, 1, 'one copy, of the 5 unread')
    for (let i = 5; i < 200; i++) await store.publish(message({ kind: 'room', room: 'r' }, i, now), now)
    t.equal(await c.zcard(base + 'l:r:r'), 20, 'the room keeps maxMailboxMessages, not everything since the leave')
    await store.leave(b.id, 'r', now)
    t.equal(await c.exists(base + 'l:r:r', base + 'mb:r:r'), 0, 'nobody in it, no history: the room is gone')
    t.same([await c.hexists(base + 'last', 'r:r'), await c.hexists(base + 'joins', 'r:r')], [0, 0], 'counts and all')
    t.same(data(await store.read(a.id, 0, ALL, now)), [0, 1, 2, 3, 4], 'the former member still reads its own')
    t.same(data(await store.read(b.id, 0, ALL, now)).length, 20, 'and so does the other one (its newest 20)')
    t.equal((await keysOf(c, base + 'l:x:')).length, 2, 'two copies, until acknowledged')
    t.same(data(await store.read(a.id, null, ALL, now)), [], 'a acknowledges')
    t.equal((await keysOf(c, base + 'l:x:')).length, 1, 'its copy is freed')
    t.same(data(await store.read(b.id, null, ALL, now)), [], 'b too')
    t.equal((await keysOf(c, base + 'l:x:')).length, 0, 'and its copy')
    t.equal((await store.stats()).queued, 0, 'copies are not counted twice')
  })

  t.test('a session whose keys timed out (the TTL backstop) breaks nothing and is swept', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const { store } = await started(t, c, prefix)
    const base = store.keyBase
    const now = Date.now()
    const a = newSession(['r'])
    const b = newSession(['r'])
    await store.createSession(a, now)
    await store.createSession(b, now)
    // What the backstop TTLs remove (the room member sets and the expiry index have none).
    await c.del(base + 's:' + a.id, base + 't:' + a.tokenHash)
    t.equal(await store.publish(message({ kind: 'session', id: a.id }, 3, now), now), 0, 'nothing is sent to it')
    t.same(await store.poll(a.tokenHash, null, 1000, ALL, now), { ok: false, reason: 'unknown' }, 'no poll is held for it')
    t.equal(await store.read(a.id, null, ALL, now), null)
    t.same((await store.members('r', null, 10, now)).items.map((m) => m.id), [b.id], 'members() leaves it out')
    t.equal(await store.publish(message({ kind: 'room', room: 'r' }, 2, now), now), 2, 'a room still counts it until it is swept')
    t.same(data(await store.read(b.id, null, ALL, now)), [2])
    const swept = await store.sweep(now + CONFIG.sessionTtl + 1, 100)
    t.same(swept.map((s) => s.id).sort(), [a.id, b.id].sort(), 'the sweep removes it with the others')
    t.equal((await store.stats()).sessions, 0)
    t.same((await keysOf(c, prefix)).map((k) => k.slice(base.length)).filter((k) => !['g', 'joins', 'last', 'stats', 'lx', 'l:all'].includes(k)), [],
      'and takes it out of its rooms: no key of it is left')
  })

  t.test('close() quits only its own subscriber; the user\'s client keeps working', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const subscriberName = `lpc-subscriber:${prefix}`
    const names = async (): Promise<string[]> => String(await c.client('LIST')).split('\n')
      .map((line) => /(?:^| )name=(\S*)/.exec(line)?.[1] ?? '').filter((n) => n === subscriberName)
    t.same(await names(), [], 'no subscriber before init')
    const store = new RedisStore({ client: c, keyPrefix: prefix })
    await store.init(CONFIG, () => {})
    t.same(await names(), [subscriberName], 'init opened one subscriber connection, named after the prefix')
    const sub = (store as unknown as { connection: { subscriber: RedisClient } }).connection.subscriber
    await store.close()
    t.equal(sub.status, 'end', 'the subscriber is closed')
    t.equal(c.status, 'ready', 'the user\'s client is not')
    t.equal(await c.ping(), 'PONG', 'and still answers')
    await store.close()
    t.pass('a second close() is harmless')
    await t.rejects(store.stats(), { code: 'LONGPOLL_STORE_UNAVAILABLE' }, 'a closed store refuses work')
    t.same(await names(), [], 'the subscriber connection is gone from the server')
  })

  t.test('losing only the subscriber connection is an outage too, and it recovers', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const { store, events } = await started(t, c, prefix)
    const a = newSession()
    await store.createSession(a, Date.now())
    const line = String(await c.client('LIST')).split('\n').find((l) => l.includes(` name=lpc-subscriber:${prefix} `))
    const id = /(?:^| )id=(\d+)/.exec(line ?? '')?.[1]
    t.ok(id, 'the subscriber connection is found by its name')
    await c.client('KILL', 'ID', id as string)
    await waitFor(() => events.some((e) => e.type === 'unavailable'), 'the unavailable event')
    await waitFor(async () => await store.stats().then(() => true, () => false), 'the store to work again')
    const p = await store.poll(a.tokenHash, null, 1000, ALL, Date.now())
    const seq = p.ok ? p.seq : -1
    await waitFor(() => events.some((e) => e.type === 'poll' && e.sessionId === a.id && e.seq === seq), 'the poll event through the new subscriber connection')
    t.equal(events.filter((e) => e.type === 'unavailable').length, 1, 'one unavailable event')
  })

  t.test('an error answer from Redis rejects that call only: no outage, the store works on', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const { store, events } = await started(t, c, prefix)
    await c.set(prefix + '{lpc}:stats', 'not a hash') // the counters' hash, made the wrong type behind the store's back
    await t.rejects(Promise.resolve().then(() => store.stats()), /WRONGTYPE/, 'the call rejects with Redis\'s error')
    await c.del(prefix + '{lpc}:stats')
    t.same(await store.stats(), { sessions: 0, queued: 0, delivered: 0, dropped: 0 }, 'the next call works')
    const a = newSession()
    t.same(await store.createSession(a, Date.now()), { ok: true, sizes: [] })
    t.same(events.filter((e) => e.type === 'unavailable'), [], 'no unavailable event: Redis is reachable')
  })

  t.test('a listener that throws, or garbage on the events channel, does not stop the events that follow', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const store = new RedisStore({ client: c, keyPrefix: prefix })
    const events: StoreEvent[] = []
    await store.init(CONFIG, (e) => {
      events.push(e)
      if (events.length === 1) throw new Error('a bug in the listener')
    })
    t.teardown(() => store.close())
    const a = newSession()
    await store.createSession(a, Date.now())
    const holdOf = async (): Promise<number> => {
      const r = await store.poll(a.tokenHash, 0, 1000, { limit: 10, maxBytes: 65_536 }, Date.now())
      return r.ok ? r.seq : -1
    }
    const first = await holdOf()
    await waitFor(() => events.length === 1, 'the first event (its listener throws)')
    await c.publish(prefix + '{lpc}:events', 'not an event {') // garbage on the events channel is ignored
    const second = await holdOf()
    await waitFor(() => events.length === 2, 'the second event, through the same subscriber')
    t.same(events, [{ type: 'poll', sessionId: a.id, seq: first }, { type: 'poll', sessionId: a.id, seq: second }])
  })

  t.test('close() during an outage returns at once, and its subscriber does not come back with Redis', { skip: noRedisServer }, async (t) => {
    const redis = await privateRedis(t)
    const prefix = uniquePrefix('lpctest')
    const c = new Redis({ port: redis.port, host: '127.0.0.1', retryStrategy: () => 50 })
    c.on('error', () => {})
    t.teardown(() => c.disconnect())
    const ping = async (): Promise<boolean> => await c.ping().then(() => true, () => false)
    await waitFor(ping, 'the private redis to accept connections')
    const store = new RedisStore({ client: c, keyPrefix: prefix })
    const events: StoreEvent[] = []
    await store.init(CONFIG, (e) => events.push(e))
    t.teardown(() => store.close())
    const sub = (store as unknown as { connection: { subscriber: RedisClient } }).connection.subscriber
    redis.stop()
    await waitFor(() => events.some((e) => e.type === 'unavailable'), 'the unavailable event')
    await waitFor(() => sub.status !== 'ready', 'the subscriber to lose its connection')
    const at = Date.now()
    await store.close()
    t.ok(Date.now() - at < 1000, `close() did not wait for Redis (${Date.now() - at} ms)`)
    await t.rejects(store.stats(), { code: 'LONGPOLL_STORE_UNAVAILABLE' }, 'a closed store refuses work')

    redis.start()
    await waitFor(ping, 'the user\'s client to reconnect (the store does not own it)', 5000)
    await sleep(300) // six retry periods of the subscriber's retryStrategy (50 ms)
    const names = String(await c.client('LIST')).split('\n').map((line) => /(?:^| )name=(\S*)/.exec(line)?.[1] ?? '')
    t.notOk(names.includes(`lpc-subscriber:${prefix}`), 'the closed store\'s subscriber did not reconnect')
  })

  t.test('outage: methods fail at once, one unavailable event, service resumes by itself', { skip: noRedisServer }, async (t) => {
    const redis = await privateRedis(t)
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix, { port: redis.port })
    await waitFor(async () => await c.ping().then(() => true, () => false), 'the private redis to accept connections')
    const { store, events } = await started(t, c, prefix)
    const a = newSession()
    t.equal((await store.createSession(a, Date.now())).ok, true)

    redis.stop()
    await waitFor(() => events.some((e) => e.type === 'unavailable'), 'the unavailable event')
    const t1 = Date.now()
    await t.rejects(store.authenticate(a.tokenHash, Date.now()), { code: 'LONGPOLL_STORE_UNAVAILABLE', statusCode: 503 })
    await t.rejects(store.poll(a.tokenHash, null, 1000, ALL, Date.now()), { code: 'LONGPOLL_STORE_UNAVAILABLE' })
    await t.rejects(store.publish(message({ kind: 'all' }, 1, Date.now()), Date.now()), { code: 'LONGPOLL_STORE_UNAVAILABLE' })
    t.ok(Date.now() - t1 < 1000, 'they fail at once, not after a reconnect')
    await sleep(200) // several reconnect attempts fail meanwhile
    t.equal(events.filter((e) => e.type === 'unavailable').length, 1, 'one event per outage')

    // Redis comes back empty (no persistence): the store works again without help.
    redis.start()
    await waitFor(async () => await store.stats().then(() => true, () => false), 'the store to work again', 5000, 10)
    const b = newSession()
    t.equal((await store.createSession(b, Date.now())).ok, true, 'new sessions can be created')
    const p = await store.poll(b.tokenHash, null, 1000, ALL, Date.now())
    const seq = p.ok ? p.seq : -1
    await waitFor(() => events.some((e) => e.type === 'poll' && e.sessionId === b.id && e.seq === seq), 'events flow again through the resubscribed subscriber')
    t.pass('the subscriber resubscribed')
  })
})
