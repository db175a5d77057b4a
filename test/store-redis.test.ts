/**
 * The Redis store: the shared store contract, plus what only a shared store has (several
 * instances on one Redis, key cleanup, one round trip per broadcast, outages).
 * Needs a Redis: REDIS_URL=redis://127.0.0.1:6379/0. ioredis and the store are imported lazily,
 * so that without REDIS_URL nothing of Redis is loaded.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import type { Redis as RedisClient } from 'ioredis'
import type { RedisStore as RedisStoreClass } from '../lib/stores/redis/index.js'
import type { StoreConfig, StoreEvent } from '../types/index.js'
import { deleteKeys, keysOf, loadRedis, noRedisServer, privateRedis, REDIS_URL, redisSkip, uniquePrefix } from './helpers/redis.js'
import { outgoing as message, sha256 } from './helpers/store.js'
import { storeContract } from './store-contract/index.js'
import { sleep, waitFor } from './helpers/wait.js'

const CONFIG: StoreConfig = {
  messageTtl: 30_000,
  sessionTtl: 60_000,
  maxMailboxMessages: 50,
  maxSessions: 1000,
  maxRoomsPerSession: 5
}

t.test('RedisStore', { skip: redisSkip }, async (t) => {
  const { Redis, RedisStore } = await loadRedis()
  const url = REDIS_URL as string

  /** A client for the test, quit (and its prefix's keys deleted) in teardown. */
  function client (tt: typeof t, prefix: string, redisUrl = url): RedisClient {
    const c = new Redis(redisUrl)
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

  function newSession (rooms: string[] = [], profile: Record<string, unknown> | null = null) {
    const token = randomBytes(16).toString('hex')
    return { id: 's-' + randomBytes(6).toString('hex'), tokenHash: sha256(token), profile, rooms }
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
  })

  t.test('the constructor checks its options', async (t) => {
    t.throws(() => new RedisStore({} as never), TypeError)
    const c = client(t, uniquePrefix('lpctest'))
    t.throws(() => new RedisStore({ client: c, keyPrefix: 1 as never }), TypeError)
    t.throws(() => new RedisStore({ client: c, gcMargin: -1 }), TypeError)
    t.throws(() => new RedisStore({ client: c, sweepBatch: 0 }), TypeError)
    await t.rejects(new RedisStore({ client: c }).stats(), 'methods before init fail')
  })

  t.test('every key is gone once the sessions expired and the message bodies timed out (real time)', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const { store } = await started(t, c, prefix, { messageTtl: 100, sessionTtl: 200 }, { gcMargin: 1000 })
    t.same(await keysOf(c, prefix), [], 'nothing before the first session')

    const a = newSession(['r1', 'r2'], { name: 'A' })
    const b = newSession(['r1'])
    t.equal(await store.createSession(a, Date.now()), true)
    t.equal(await store.createSession(b, Date.now()), true)
    await store.publish(message({ kind: 'all' }, 1, Date.now()), Date.now())
    await store.publish(message({ kind: 'room', room: 'r1' }, 2, Date.now()), Date.now())
    await store.publish(message({ kind: 'session', id: a.id }, 3, Date.now()), Date.now())
    const r = await store.read(b.id, 0, 1, Date.now())
    t.same(r !== null && r !== 'bad-cursor' ? r.messages.length : r, 1, 'one delivered, one left unacknowledged')
    const during = await keysOf(c, prefix)
    t.ok(during.length >= 12, `session, token, room, mailbox and body keys exist (${during.length})`)

    await sleep(250)
    t.equal(await store.authenticate(a.tokenHash, Date.now()), null, 'expired after sessionTtl, before the sweep')
    const swept = await store.sweep(Date.now())
    t.same(swept.map((s) => s.id).sort(), [a.id, b.id].sort(), 'both swept')
    const left = await keysOf(c, prefix)
    t.ok(left.every((k) => k.startsWith(prefix + 'm:') || k === prefix + 'stats'), `right after the sweep only message bodies and counters remain (${left.length})`)
    // Bodies live messageTtl + gcMargin (1.1 s); the session keys' backstop TTL (1.2 s) is far
    // enough after the sweep that a slow machine does not let it run first.
    await waitFor(async () => (await keysOf(c, prefix)).length === 1, 'the message bodies to time out', 5000, 10)
    t.same(await keysOf(c, prefix), [prefix + 'stats'], 'then only the global counters')
    t.same(await store.stats(), { sessions: 0, queued: 0, delivered: 1, dropped: 0 })
  })

  t.test('messageTtl in real time: an unread message expires and is counted as missed', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const { store } = await started(t, c, prefix, { messageTtl: 100 })
    const a = newSession()
    await store.createSession(a, Date.now())
    await store.publish(message({ kind: 'session', id: a.id }, 'old', Date.now()), Date.now())
    await sleep(150)
    await store.publish(message({ kind: 'session', id: a.id }, 'new', Date.now()), Date.now())
    const r = await store.read(a.id, 0, 10, Date.now())
    if (r === null || r === 'bad-cursor') throw new Error('read failed')
    t.same(r.messages.map((m) => JSON.parse(m).data), ['new'])
    t.equal(r.missed, 1)
  })

  t.test('a broadcast to N sessions is one round trip, and so is a room publish', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const { store } = await started(t, c, prefix)
    const ids: string[] = []
    for (let i = 0; i < 30; i++) {
      const s = newSession(i % 2 === 0 ? ['even'] : [])
      await store.createSession(s, Date.now())
      ids.push(s.id)
    }
    await store.publish(message({ kind: 'session', id: ids[0] as string }, 'warm-up', Date.now()), Date.now())

    const sent: string[] = []
    const original = c.sendCommand.bind(c)
    c.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
      sent.push(command.name)
      return (original as (...args: unknown[]) => unknown)(command, ...rest)
    }) as typeof c.sendCommand
    t.teardown(() => { c.sendCommand = original })

    t.equal(await store.publish(message({ kind: 'all' }, 'to all', Date.now()), Date.now()), 30)
    t.same(sent, ['evalsha'], 'one command for 30 recipients')
    sent.length = 0
    t.equal(await store.publish(message({ kind: 'room', room: 'even' }, 'to even', Date.now()), Date.now()), 15)
    t.same(sent, ['evalsha'], 'one command for a room of 15')
    c.sendCommand = original

    for (const [i, id] of ids.entries()) {
      const r = await store.read(id, null, 10, Date.now())
      if (r === null || r === 'bad-cursor') throw new Error('read failed')
      const data = r.messages.map((m) => JSON.parse(m).data).filter((d) => d !== 'warm-up')
      t.same(data, i % 2 === 0 ? ['to all', 'to even'] : ['to all'], `mailbox ${i}`)
    }
  })

  t.test('large reads and large rooms', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const { store, events } = await started(t, c, prefix, { maxMailboxMessages: 3000, maxSessions: 10_000 })
    const now = Date.now()
    const a = newSession()
    await store.createSession(a, now)
    await Promise.all(Array.from({ length: 2500 }, (_, i) => i).map(async (i) => {
      await store.publish(message({ kind: 'session', id: a.id }, i, now), now)
    }))
    const r = await store.read(a.id, 0, 2500, now)
    if (r === null || r === 'bad-cursor') throw new Error('read failed')
    t.equal(r.messages.length, 2500, 'one read returns 2500 messages (bodies fetched in chunks)')
    t.equal(r.cursor, 2500)
    t.same(r.messages.map((m) => JSON.parse(m).data).sort((x, y) => x - y).slice(0, 3), [0, 1, 2])

    // More than 5000 recipients: one wake for everybody instead of a list of 5001 ids.
    await Promise.all(Array.from({ length: 5001 }, () => store.createSession(newSession(['big']), now)))
    const mark = events.length
    t.equal(await store.publish(message({ kind: 'room', room: 'big' }, 'x', now), now), 5001)
    await waitFor(() => events.slice(mark).some((e) => e.type === 'wake'), 'the wake')
    t.same(events.slice(mark).filter((e) => e.type === 'wake'), [{ type: 'wake', sessions: null }])
  })

  t.test('a session whose keys timed out (the TTL backstop) breaks nothing and is swept', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const { store } = await started(t, c, prefix)
    const now = Date.now()
    const a = newSession(['r'])
    const b = newSession(['r'])
    await store.createSession(a, now)
    await store.createSession(b, now)
    // What the backstop TTLs remove (the room list sr: has none).
    await c.del(prefix + 's:' + a.id, prefix + 't:' + a.tokenHash)
    t.equal(await store.publish(message({ kind: 'all' }, 1, now), now), 1, 'a broadcast skips it')
    t.equal(await store.publish(message({ kind: 'room', room: 'r' }, 2, now), now), 1, 'so does a room publish')
    t.equal(await store.publish(message({ kind: 'session', id: a.id }, 3, now), now), 0)
    t.equal(await store.beginPoll(a.id, 1000, now), null, 'no poll is held for it')
    t.same((await store.members('r')).map((m) => m.id), [b.id], 'members() leaves it out')
    const swept = await store.sweep(now + CONFIG.sessionTtl + 1)
    t.same(swept.map((s) => s.id).sort(), [a.id, b.id].sort(), 'the sweep removes it with the others')
    t.equal((await store.stats()).sessions, 0)
    t.same((await keysOf(c, prefix)).filter((k) => !k.startsWith(prefix + 'm:')), [prefix + 'stats'],
      'and takes it out of its rooms: no key of it is left')
  })

  t.test('members() leaves out sessions expired but not yet swept', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const { store } = await started(t, c, prefix, { sessionTtl: 10_000 })
    const T0 = Date.now()
    const a = newSession(['r'])
    const b = newSession(['r'])
    await store.createSession(a, T0)
    await store.createSession(b, T0 + 5000)
    t.same((await store.members('r')).map((m) => m.id).sort(), [a.id, b.id].sort())
    await store.authenticate(b.tokenHash, T0 + 12_000) // the store's clock is now past a's expiry
    t.same((await store.members('r')).map((m) => m.id), [b.id], 'a is expired: not a member any more')
    t.same((await store.members()).map((m) => m.id), [b.id])
    t.equal((await store.stats()).sessions, 2, 'stats() counts it until the sweep, as the memory store does')
    t.equal(await store.authenticate(a.tokenHash, T0 + 12_000), null, 'its token is refused')
    t.equal((await store.authenticate(b.tokenHash, T0 + 12_000))?.id, b.id)
    t.same((await store.sweep(T0 + 12_000)).map((s) => s.id), [a.id])
  })

  t.test('the body of a broadcast is stored once', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const { store } = await started(t, c, prefix)
    for (let i = 0; i < 5; i++) await store.createSession(newSession(), Date.now())
    const m = message({ kind: 'all' }, 'x'.repeat(1000), Date.now())
    await store.publish(m, Date.now())
    const keys = await keysOf(c, prefix + 'm:')
    t.same(keys, [prefix + 'm:' + m.id], 'one body key')
    t.equal(await c.get(prefix + 'm:' + m.id), m.json)
    const ttl = await c.pttl(prefix + 'm:' + m.id)
    t.ok(ttl > 0 && ttl <= CONFIG.messageTtl + 30_000, `with a TTL of messageTtl + margin (${ttl} ms)`)
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

  t.test('two instances on one prefix: events reach both, join/leave/sweep happen once', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c1 = client(t, prefix)
    const c2 = client(t, prefix)
    const one = await started(t, c1, prefix, { sessionTtl: 10_000 })
    const two = await started(t, c2, prefix, { sessionTtl: 10_000 })
    const T0 = Date.now()

    const a = newSession(['r'])
    await one.store.createSession(a, T0)
    const seq = await two.store.beginPoll(a.id, 1000, T0)
    await waitFor(() =>
      [one.events, two.events].every((evs) => evs.some((e) => e.type === 'poll' && e.sessionId === a.id && e.seq === seq)), 'the poll event on both')
    t.equal(two.events.filter((e) => e.type === 'poll').length, 1, 'an instance gets its own event once, through pub/sub')
    await two.store.endPoll(a.id, seq as number, T0)

    await one.store.publish(message({ kind: 'session', id: a.id }, 'hi', T0 + 1), T0 + 1)
    await waitFor(() =>
      [one.events, two.events].every((evs) => evs.some((e) => e.type === 'wake' && e.sessions?.includes(a.id))), 'the wake on both')
    const r = await two.store.read(a.id, 0, 10, T0 + 2)
    t.same(r !== null && r !== 'bad-cursor' ? r.messages.map((m) => JSON.parse(m).data) : r, ['hi'], 'read on the other instance')

    const joins = await Promise.all([one.store.join(a.id, 'q'), two.store.join(a.id, 'q'), one.store.join(a.id, 'q')])
    t.same(joins.filter((j) => j === 'joined').length, 1, 'a concurrent join is joined once')
    const leaves = await Promise.all([one.store.leave(a.id, 'q'), two.store.leave(a.id, 'q')])
    t.same(leaves.filter(Boolean).length, 1, 'a concurrent leave is true once')

    const ids = [a.id]
    for (let i = 0; i < 40; i++) {
      const s = newSession(['r'])
      await (i % 2 === 0 ? one : two).store.createSession(s, T0 + 3)
      ids.push(s.id)
    }
    t.same(await one.store.stats(), await two.store.stats(), 'stats agree')
    t.same((await one.store.members('r')).map((m) => m.id).sort(), (await two.store.members('r')).map((m) => m.id).sort(), 'members agree')
    const [s1, s2] = await Promise.all([one.store.sweep(T0 + 20_000), two.store.sweep(T0 + 20_000)])
    const swept = [...s1, ...s2].map((s) => s.id).sort()
    t.same(swept, ids.sort(), 'each session is swept exactly once by the two sweepers together')
    await waitFor(() =>
      [one.events, two.events].every((evs) => evs.filter((e) => e.type === 'ended').length === ids.length), 'the ended events on both')
    t.equal((await one.store.stats()).sessions, 0)
  })

  t.test('a broadcast to a large room in one script keeps every mailbox contiguous', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c1 = client(t, prefix)
    const c2 = client(t, prefix)
    const one = await started(t, c1, prefix)
    const two = await started(t, c2, prefix)
    const ids: string[] = []
    for (let i = 0; i < 10; i++) {
      const s = newSession(['r'])
      await one.store.createSession(s, Date.now())
      ids.push(s.id)
    }
    // Interleaved publishes from both instances: every mailbox gets the same order.
    await Promise.all(Array.from({ length: 40 }, (_, i) =>
      (i % 2 === 0 ? one : two).store.publish(message({ kind: 'room', room: 'r' }, i, Date.now()), Date.now())))
    let reference: unknown[] | null = null
    for (const id of ids) {
      const r = await two.store.read(id, 0, 100, Date.now())
      if (r === null || r === 'bad-cursor') throw new Error('read failed')
      t.equal(r.cursor, 40, 'sequences are contiguous: 40 messages, cursor 40')
      const data = r.messages.map((m) => JSON.parse(m).data)
      t.equal(new Set(data).size, 40)
      if (reference === null) reference = data
      else t.same(data, reference, 'the same order in every mailbox')
    }
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
    const seq = await store.beginPoll(a.id, 1000, Date.now())
    await waitFor(() =>
      events.some((e) => e.type === 'poll' && e.sessionId === a.id && e.seq === seq), 'the poll event through the new subscriber connection')
    t.equal(events.filter((e) => e.type === 'unavailable').length, 1, 'one unavailable event')
  })

  t.test('an error answer from Redis rejects that call only: no outage, the store works on', async (t) => {
    const prefix = uniquePrefix('lpctest')
    const c = client(t, prefix)
    const { store, events } = await started(t, c, prefix)
    await c.set(prefix + 'stats', 'not a hash') // the counters' hash, made the wrong type behind the store's back
    await t.rejects(store.stats(), /WRONGTYPE/, 'the call rejects with Redis\'s error')
    await c.del(prefix + 'stats')
    t.same(await store.stats(), { sessions: 0, queued: 0, delivered: 0, dropped: 0 }, 'the next call works')
    const a = newSession()
    t.equal(await store.createSession(a, Date.now()), true)
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
    const first = await store.beginPoll(a.id, 1000, Date.now())
    await waitFor(() => events.length === 1, 'the first event (its listener throws)')
    await c.publish(prefix + 'events', 'not an event {') // garbage on the events channel is ignored
    const second = await store.beginPoll(a.id, 1000, Date.now())
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
    const port = redis.port
    const prefix = uniquePrefix('lpctest')
    const c = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 50 })
    c.on('error', () => {})
    t.teardown(() => c.disconnect())
    await waitFor(async () => await c.ping().then(() => true, () => false), 'the private redis to accept connections')
    const { store, events } = await started(t, c, prefix)
    const a = newSession()
    t.equal(await store.createSession(a, Date.now()), true)

    redis.stop()
    await waitFor(() => events.some((e) => e.type === 'unavailable'), 'the unavailable event')
    const t1 = Date.now()
    await t.rejects(store.authenticate(a.tokenHash, Date.now()), { code: 'LONGPOLL_STORE_UNAVAILABLE', statusCode: 503 })
    await t.rejects(store.publish(message({ kind: 'all' }, 1, Date.now()), Date.now()), { code: 'LONGPOLL_STORE_UNAVAILABLE' })
    t.ok(Date.now() - t1 < 1000, 'they fail at once, not after a reconnect')
    await sleep(200) // several reconnect attempts fail meanwhile
    t.equal(events.filter((e) => e.type === 'unavailable').length, 1, 'one event per outage')

    // Redis comes back empty (no persistence): the store works again without help.
    redis.start()
    await waitFor(async () => await store.stats().then(() => true, () => false), 'the store to work again', 5000, 10)
    const b = newSession()
    t.equal(await store.createSession(b, Date.now()), true, 'new sessions can be created')
    const seq = await store.beginPoll(b.id, 1000, Date.now())
    await waitFor(() =>
      events.some((e) => e.type === 'poll' && e.sessionId === b.id && e.seq === seq), 'events flow again through the resubscribed subscriber')
    t.pass('the subscriber resubscribed')
  })
})
