/**
 * Several instances, one Redis: the protocol holds as if they were one server (PROTOCOL.md,
 * "Several instances"). First the store alone: three RedisStore instances, each with its own
 * ioredis client, on one key prefix, as three server instances would use them. Then the plugin:
 * three Fastify instances on port 0, spoken to over real HTTP; any request may go to any
 * instance. Needs REDIS_URL (redis://127.0.0.1:6379/0); the outage test starts its own
 * redis-server on a free port and never touches the shared one.
 */
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import type { Redis as RedisClient } from 'ioredis'
import type { RedisStore as RedisStoreClass } from '../lib/stores/redis/index.js'
import type { LogTarget, NewSession, OutgoingMessage, ReadResult, StoreConfig, StoreEvent } from '../lib/stores/store.js'
import type { LongPollChatOptions, Message } from '../types/index.js'
import { assertError, join, leave, members, poll, pollOk, register, send, type Asserts } from './helpers/http.js'
import { prng } from './helpers/random.js'
import { deleteKeys, loadRedis, noRedisServer, privateRedis, REDIS_URL, redisSkip, uniquePrefix } from './helpers/redis.js'
import { start, type TestServer } from './helpers/server.js'
import { sha256 } from './helpers/store.js'
import { sleep, waitFor, waitHeld } from './helpers/wait.js'

/** Destructuring target for `servers` (two or three instances). */
type Three = [TestServer, TestServer, TestServer]

/** assertError of the helpers, whose `Asserts` type tap's `Test` does not satisfy for tsc. */
function expectError (tt: Test, res: Parameters<typeof assertError>[1], status: number, code: string, what: string): void {
  assertError(tt as unknown as Asserts, res, status, code, what)
}

const STORE_CONFIG: StoreConfig = {
  messageTtl: 30_000,
  sessionTtl: 10_000,
  maxMailboxMessages: 100,
  maxSessions: 1000,
  maxRoomsPerSession: 5,
  maxSessionsPerUser: 0,
  history: { maxMessages: 20, maxAge: 60_000 }
}
const ALL = { limit: 1000, maxBytes: 1 << 30 }

t.test('several store instances on one Redis', { skip: redisSkip }, async (t) => {
  const { Redis, RedisStore } = await loadRedis()

  interface Instance { store: RedisStoreClass, events: StoreEvent[], name: string }

  /** `n` stores sharing one key prefix, each with its own client and its own event list. */
  async function stores (tt: Test, n: number): Promise<Instance[]> {
    const prefix = uniquePrefix('lpcmulti')
    const out: Instance[] = []
    const clients: RedisClient[] = []
    tt.teardown(async () => {
      for (const i of out) await i.store.close()
      await deleteKeys(clients[0] as RedisClient, prefix)
      for (const c of clients) await c.quit()
    })
    for (let i = 0; i < n; i++) {
      const client = new Redis(REDIS_URL as string)
      client.on('error', () => {})
      clients.push(client)
      const store = new RedisStore({ client, keyPrefix: prefix })
      const events: StoreEvent[] = []
      await store.init(STORE_CONFIG, (e) => events.push(e))
      out.push({ store, events, name: 'ABC'[i] ?? String(i) })
    }
    return out
  }

  const session = (rooms: string[] = [], user: string | null = null): NewSession =>
    ({ id: 's-' + randomBytes(6).toString('hex'), tokenHash: sha256(randomBytes(16).toString('hex')), profile: null, user, context: null, rooms })
  const message = (target: LogTarget, data: unknown, ts: number): OutgoingMessage => {
    const id = 'm-' + randomBytes(6).toString('hex')
    return { id, ts, json: JSON.stringify({ id, data, ts }), target }
  }
  const data = (r: ReadResult | 'bad-cursor' | null): unknown[] => {
    if (r === null || r === 'bad-cursor') throw new Error(`read failed: ${r}`)
    return r.messages.map((m) => (JSON.parse(m) as { data: unknown }).data)
  }
  const has = (i: Instance, match: (e: StoreEvent) => boolean): boolean => i.events.some(match)

  t.test('a poll held on B is woken by a publish on C for a session created on A', async (t) => {
    const [A, B, C] = await stores(t, 3) as [Instance, Instance, Instance]
    const now = Date.now()
    const a = session(['r'])
    await A.store.createSession(a, now)
    const p = await B.store.poll(a.tokenHash, 0, 5000, ALL, now)
    if (!p.ok) throw new Error('poll failed')
    t.ok(p.seq > 0, 'nothing to answer: held on B')
    t.same(p.read.rooms, ['r'], 'with the rooms B indexes the hold by')
    t.equal(await C.store.publish(message({ kind: 'room', room: 'r' }, 'across', now + 1), now + 1), 1)
    await waitFor(() => has(B, (e) => e.type === 'wake' && e.log === 'r:r'), 'the wake on B')
    const r = await B.store.read(a.id, 0, ALL, now + 2, p.seq)
    t.same(data(r), ['across'], 'B reads it')
    t.same(await A.store.sweep(now + 2 + STORE_CONFIG.sessionTtl - 1, 100), [], 'the read on B ended the hold: idle from then on, seen by A')
  })

  t.test('a newer poll on A supersedes a poll held on B: B learns it from the poll event', async (t) => {
    const [A, B] = await stores(t, 2) as [Instance, Instance]
    const now = Date.now()
    const a = session()
    await A.store.createSession(a, now)
    const older = await B.store.poll(a.tokenHash, 0, 5000, ALL, now)
    const newer = await A.store.poll(a.tokenHash, 0, 5000, ALL, now + 1)
    if (!older.ok || !newer.ok) throw new Error('poll failed')
    t.ok(newer.seq > older.seq)
    await waitFor(() => has(B, (e) => e.type === 'poll' && e.sessionId === a.id && e.seq === newer.seq), 'the newer poll event on B')
    await B.store.publish(message({ kind: 'session', id: a.id }, 'x', now + 2), now + 2)
    const r = await B.store.read(a.id, 0, ALL, now + 3, older.seq)
    if (r === null || r === 'bad-cursor') throw new Error('read failed')
    t.ok(r.pollSeq > older.seq, 'a read for the older hold sees a newer poll sequence (the core answers 409)')
    await B.store.endPoll(a.id, older.seq, now + 4)
    t.same(await A.store.sweep(now + 14_000, 100), [], 'and ending the older hold did not end the newer one (idle since now + 4 it would be gone)')
  })

  t.test('join, leave and expiry happen once across instances', async (t) => {
    const all = await stores(t, 3)
    const [A, B, C] = all as [Instance, Instance, Instance]
    const now = Date.now()
    const a = session(['r'])
    await A.store.createSession(a, now)
    const joins = await Promise.all(all.map((i) => i.store.join(a.id, 'q', now)))
    t.same(joins.map((j) => j.result).sort(), ['already', 'already', 'joined'], 'a concurrent join is joined once')
    const leaves = await Promise.all(all.map((i) => i.store.leave(a.id, 'q', now)))
    t.same(leaves.filter((l) => l.left).length, 1, 'a concurrent leave is left once')

    const ids = [a.id]
    for (let i = 0; i < 30; i++) {
      const s = session(['r'])
      await (all[i % 3] as Instance).store.createSession(s, now + 1)
      ids.push(s.id)
    }
    t.same(await A.store.stats(), await C.store.stats(), 'stats agree')
    const page = async (i: Instance): Promise<string[]> => (await i.store.members('r', null, 100, now + 1)).items.map((m) => m.id)
    t.same(await page(B), ids, 'members in join order, the same on every instance')
    t.same(await page(C), ids)
    const swept = (await Promise.all(all.map((i) => i.store.sweep(now + 20_000, 7)))).flat().map((e) => e.id)
    t.equal(swept.length, 21, 'three sweepers of at most 7 each')
    const rest = (await Promise.all(all.map((i) => i.store.sweep(now + 20_000, 7)))).flat().map((e) => e.id)
    t.same([...swept, ...rest].sort(), [...ids].sort(), 'each session swept exactly once by the sweepers together')
    for (const i of all) {
      await waitFor(() => i.events.filter((e) => e.type === 'ended').length === ids.length, `the ${ids.length} ended events on ${i.name}`)
    }
    t.equal((await B.store.stats()).sessions, 0)
  })

  t.test('a user\'s sessions on two instances all receive a message to the user; ending the user ends them everywhere', async (t) => {
    const [A, B, C] = await stores(t, 3) as [Instance, Instance, Instance]
    const now = Date.now()
    const tab = session([], 'ann')
    const phone = session([], 'ann')
    const other = session([], 'bob')
    await A.store.createSession(tab, now)
    await B.store.createSession(phone, now)
    await C.store.createSession(other, now)
    t.same((await C.store.userSessions('ann', now)).map((m) => m.id), [tab.id, phone.id], 'found in one call, oldest first')
    t.same(await C.store.lookup(phone.id, now), { id: phone.id, user: 'ann' })
    const ht = await A.store.poll(tab.tokenHash, 0, 5000, ALL, now)
    const hp = await B.store.poll(phone.tokenHash, 0, 5000, ALL, now)
    if (!ht.ok || !hp.ok) throw new Error('poll failed')
    t.same([ht.read.user, hp.read.user], ['ann', 'ann'], 'the holds are indexed by the user')
    t.equal(await C.store.publish(message({ kind: 'user', user: 'ann' }, 'to ann', now + 1), now + 1), 2, 'two recipients')
    for (const i of [A, B]) await waitFor(() => has(i, (e) => e.type === 'wake' && e.log === 'u:ann'), `the wake on ${i.name}`)
    t.same(data(await A.store.read(tab.id, 0, ALL, now + 2, ht.seq)), ['to ann'], 'the tab, on A')
    t.same(data(await B.store.read(phone.id, 0, ALL, now + 2, hp.seq)), ['to ann'], 'the phone, on B')
    t.same(data(await C.store.read(other.id, 0, ALL, now + 2)), [], 'nobody else')

    const ended = await C.store.endUser('ann')
    t.same(ended.map((e) => e.id), [tab.id, phone.id], 'logout everywhere, from C')
    for (const i of [A, B]) {
      await waitFor(() => [tab.id, phone.id].every((id) => has(i, (e) => e.type === 'ended' && e.sessionId === id)), `the ended events on ${i.name}`)
    }
    t.same(await A.store.authenticate(tab.tokenHash, now + 3), { ok: false, reason: 'unknown' })
    t.equal(await B.store.read(phone.id, 0, ALL, now + 3), null)
    t.same(await A.store.userSessions('ann', now + 3), [])
    t.equal(await A.store.publish(message({ kind: 'user', user: 'ann' }, 'late', now + 4), now + 4), 0, 'nobody left to receive it')
  })

  t.test('publishes from two instances interleave in one order for everyone', async (t) => {
    const [A, B] = await stores(t, 2) as [Instance, Instance]
    const now = Date.now()
    const ids: string[] = []
    for (let i = 0; i < 8; i++) {
      const s = session(['r'])
      await A.store.createSession(s, now)
      ids.push(s.id)
    }
    await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? A : B).store.publish(
      message(i % 3 === 0 ? { kind: 'all' } : { kind: 'room', room: 'r' }, i, now), now)))
    let reference: unknown[] | null = null
    for (const id of ids) {
      const r = await B.store.read(id, 0, ALL, now)
      const got = data(r)
      t.equal(new Set(got).size, 40, 'all 40, from both logs')
      if (reference === null) reference = got
      else t.same(got, reference, 'in the same order in every mailbox')
    }
  })
})

t.test('several instances on one Redis', { skip: redisSkip }, async (t) => {
  const { Redis, RedisStore } = await loadRedis()

  /**
   * `n` listening instances sharing one key prefix, each with its own client. Teardown closes the
   * apps, deletes the prefix's keys and quits the clients.
   */
  async function cluster (tt: Test, n: number, options: LongPollChatOptions = {},
    redis: { url?: string, port?: number } = { url: REDIS_URL }): Promise<{ servers: TestServer[], clients: RedisClient[], prefix: string }> {
    const prefix = uniquePrefix('lpcmulti')
    const clients: RedisClient[] = []
    const servers: TestServer[] = []
    tt.teardown(async () => {
      for (const s of servers) await s.close()
      const c = clients.find((x) => x.status === 'ready')
      if (c !== undefined) await deleteKeys(c, prefix)
      for (const x of clients) x.disconnect()
    })
    for (let i = 0; i < n; i++) {
      const client = redis.port !== undefined
        ? new Redis({ host: '127.0.0.1', port: redis.port, retryStrategy: () => 50 })
        : new Redis(redis.url as string)
      client.on('error', () => {})
      clients.push(client)
      const store = new RedisStore({ client, keyPrefix: prefix })
      servers.push(await start(tt, { rateLimit: false, pollTimeout: 5000, ...options, store }, { listen: true }))
    }
    return { servers, clients, prefix }
  }

  const data = (ms: Message[]): unknown[] => ms.filter((m) => m.type === 'message').map((m) => m.data)

  t.test('a publish on C wakes a poll held on B for a session registered on A', async (t) => {
    const [A, B, C] = (await cluster(t, 3)).servers as Three
    const alice = await register(A, { rooms: ['r'] })
    const bob = await register(C, { rooms: ['r'] })
    const first = await pollOk(B, alice.token, { cursor: alice.cursor, wait: 0 })
    const held = pollOk(B, alice.token, { cursor: first.cursor, wait: 4000 })
    await waitHeld(B, 1)
    const sentAt = Date.now()
    const res = await send(C, bob.token, { room: 'r', data: 'across' })
    t.equal(res.status, 202)
    const answer = await held
    const ms = Date.now() - sentAt
    t.same(data(answer.messages), ['across'], 'the held poll got the message')
    t.equal(answer.messages[0]?.from, bob.id)
    t.ok(ms < 1000, `answered promptly (${ms} ms; the hold was 4 s)`)

    // A direct message from the app's decorator on A to a poll held on C.
    const again = pollOk(C, alice.token, { cursor: answer.cursor, wait: 4000 })
    await waitHeld(C, 1)
    await A.app.longPoll.send(alice.id, { n: 1 })
    t.same(data((await again).messages), [{ n: 1 }], 'the decorator on another instance wakes it too')
  })

  t.test('a lost response loses nothing: the old cursor on another instance returns the same messages', async (t) => {
    const [A, B, C] = (await cluster(t, 3)).servers as Three
    const s = await register(A)
    for (let i = 1; i <= 3; i++) await C.app.longPoll.send(s.id, i)
    const r1 = await pollOk(B, s.token, { cursor: s.cursor, wait: 0 })
    t.same(data(r1.messages), [1, 2, 3])
    const lost = await pollOk(C, s.token, { cursor: s.cursor, wait: 0 })
    t.same(lost.messages, r1.messages, 'the same messages again, elsewhere')
    t.equal(lost.cursor, r1.cursor, 'and the same cursor')
    await A.app.longPoll.send(s.id, 4)
    const r2 = await pollOk(A, s.token, { cursor: r1.cursor, wait: 0 })
    t.same(data(r2.messages), [4], 'the new cursor acknowledged 1-3 on every instance')
    const bad = await poll(B, s.token, { cursor: String(Number(r2.cursor) + 1), wait: 0 })
    expectError(t, bad, 400, 'LONGPOLL_BAD_CURSOR', 'a cursor ahead of anything issued, on another instance')
  })

  t.test('lag fuzz across instances: every message exactly once, in order', async (t) => {
    const { servers } = await cluster(t, 3)
    const rnd = prng(0x5eed)
    const pick = (): TestServer => servers[Math.floor(rnd() * servers.length)] as TestServer
    const receiver = await register(pick(), { rooms: ['fuzz'] })
    const senders = [await register(pick(), { rooms: ['fuzz'] }), await register(pick(), { rooms: ['fuzz'] })]
    const total = 60
    const deadline = Date.now() + 15_000

    const sending = (async () => {
      for (let n = 0; n < total; n++) {
        const res = await send(pick(), (senders[n % 2] as { token: string }).token, { room: 'fuzz', data: n })
        if (res.status !== 202) throw new Error(`send ${n}: ${res.status} ${res.text}`)
        if (rnd() < 0.3) await sleep(Math.floor(rnd() * 8))
      }
    })()

    const got: number[] = []
    let cursor = receiver.cursor
    let polls = 0
    let lostResponses = 0
    while (got.length < total && Date.now() < deadline && polls < 2000) {
      polls++
      const wait = rnd() < 0.5 ? 0 : Math.floor(rnd() * 50)
      const res = await pollOk(pick(), receiver.token, { cursor, wait })
      if (rnd() < 0.25) {
        lostResponses++
        continue // the response was "lost": poll again with the old cursor, elsewhere
      }
      cursor = res.cursor
      for (const m of res.messages) if (m.type === 'message') got.push(m.data as number)
    }
    await sending
    t.same(got, Array.from({ length: total }, (_, i) => i), `all ${total} messages once, in order (${polls} polls, ${lostResponses} responses dropped)`)
  })

  t.test('a newer poll on A supersedes a poll held on B (409 on B)', async (t) => {
    const [A, B] = (await cluster(t, 2)).servers as Three
    const s = await register(A)
    const older = poll(B, s.token, { cursor: s.cursor, wait: 4000 })
    await waitHeld(B, 1)
    const newer = pollOk(A, s.token, { cursor: s.cursor, wait: 4000 })
    const res = await older
    expectError(t, res, 409, 'LONGPOLL_POLL_SUPERSEDED', 'the older poll, on B')
    t.ok(res.ms < 2000, `answered at once (${res.ms} ms)`)
    await waitHeld(A, 1)
    t.equal((await B.app.longPoll.stats()).heldPolls, 0, 'B holds nothing any more')
    await B.app.longPoll.send(s.id, 'for the newer one')
    t.same(data((await newer).messages), ['for the newer one'], 'the newer poll on A is the one that gets mail')
  })

  t.test('join, leave and expiry happen once across instances', async (t) => {
    const ended: string[] = []
    const [A, B, C] = (await cluster(t, 3, {
      sessionTtl: 400,
      sweepInterval: 30,
      onSessionEnd: (s) => { ended.push(s.id + ':' + s.reason) }
    })).servers as Three
    const watcher = await register(A, { rooms: ['lobby'] })
    const seen: Message[] = []
    let cursor = watcher.cursor
    const state = { watching: true }
    const watch = (async () => {
      let i = 0
      while (state.watching) {
        const server = [A, B, C][i++ % 3] as TestServer
        const r = await pollOk(server, watcher.token, { cursor, wait: 100 })
        cursor = r.cursor
        seen.push(...r.messages)
      }
    })()

    const u = await register(B, { rooms: ['lobby'], profile: { name: 'U' } })
    t.equal((await join(C, u.token, 'lobby')).status, 204, 'joining again elsewhere is a no-op')
    t.equal((await leave(A, u.token, 'lobby')).status, 204)
    t.equal((await leave(B, u.token, 'lobby')).status, 204, 'leaving again elsewhere is a no-op')
    t.equal((await join(C, u.token, 'lobby')).status, 204)
    // u now idles: the three sweepers race for its expiry.
    const count = (type: string): number => seen.filter((m) => m.type === type && m.from === u.id).length
    await waitFor(() => count('leave') === 2, 'the leave on expiry', 5000)
    await sleep(300) // three more sweeps on each instance: a duplicate would show up now
    state.watching = false
    await watch
    t.equal(count('join'), 2, 'one join at register, one on the second join')
    t.equal(count('leave'), 2, 'one leave, one expiry')
    t.same(ended, [u.id + ':expired'], 'onSessionEnd once, on one instance')
    t.same(seen.filter((m) => m.from === u.id).map((m) => m.type), ['join', 'leave', 'join', 'leave'], 'in order')
  })

  t.test('a user\'s sessions on two instances all receive a toUser and a sendToUser message', async (t) => {
    const user = { authenticate: (req: { headers: Record<string, unknown> }) => ({ user: String(req.headers['x-user']) }) }
    const [A, B, C] = (await cluster(t, 3, user)).servers as Three
    const tab = await register(A, {}, { 'x-user': 'ann' })
    const phone = await register(B, {}, { 'x-user': 'ann' })
    const bob = await register(C, {}, { 'x-user': 'bob' })
    const heldTab = pollOk(A, tab.token, { cursor: tab.cursor, wait: 4000 })
    const heldPhone = pollOk(B, phone.token, { cursor: phone.cursor, wait: 4000 })
    await waitHeld(A, 1)
    await waitHeld(B, 1)
    t.equal((await send(C, bob.token, { toUser: phone.id, data: 'hi ann' })).status, 202, 'bob writes to the person behind the phone, on C')
    const [rt, rp] = await Promise.all([heldTab, heldPhone])
    for (const [what, r] of [['the tab, held on A', rt], ['the phone, held on B', rp]] as const) {
      t.same(data(r.messages), ['hi ann'], what)
      t.equal(r.messages[0]?.toUser, true)
      t.equal(r.messages[0]?.to, phone.id, 'to: the session bob addressed')
      t.equal(r.messages[0]?.from, bob.id)
    }
    const again = [pollOk(A, tab.token, { cursor: rt.cursor, wait: 4000 }), pollOk(B, phone.token, { cursor: rp.cursor, wait: 4000 })]
    await waitHeld(A, 1)
    await waitHeld(B, 1)
    t.equal((await C.app.longPoll.sendToUser('ann', 'from the app')).recipients, 2, 'sendToUser on C counts both')
    for (const r of await Promise.all(again)) {
      t.same(data(r.messages), ['from the app'])
      t.same([r.messages[0]?.toUser, r.messages[0]?.to, r.messages[0]?.from], [true, null, null])
    }
    t.same((await A.app.longPoll.userSessions('ann')).map((m) => m.id).sort(), [tab.id, phone.id].sort(), 'userSessions on any instance')
    t.same(data((await pollOk(C, bob.token, { cursor: bob.cursor, wait: 0 })).messages), [], 'nobody else got them')
  })

  t.test('logout everywhere: endUser on C answers the held polls of the user on A and B with 401', async (t) => {
    const user = { authenticate: (req: { headers: Record<string, unknown> }) => ({ user: String(req.headers['x-user']) }) }
    const [A, B, C] = (await cluster(t, 3, user)).servers as Three
    const tab = await register(A, {}, { 'x-user': 'ann' })
    const phone = await register(B, {}, { 'x-user': 'ann' })
    const other = await register(A, {}, { 'x-user': 'bob' })
    const heldTab = poll(A, tab.token, { cursor: tab.cursor, wait: 4000 })
    const heldPhone = poll(B, phone.token, { cursor: phone.cursor, wait: 4000 })
    await waitHeld(A, 1)
    await waitHeld(B, 1)
    t.equal(await C.app.longPoll.endUser('ann'), 2, 'two sessions ended')
    for (const [what, res] of [['the tab on A', await heldTab], ['the phone on B', await heldPhone]] as const) {
      expectError(t, res, 401, 'LONGPOLL_UNKNOWN_SESSION', what)
      t.ok(res.ms < 2000, `${what}: at once (${res.ms} ms)`)
    }
    expectError(t, await poll(B, tab.token, { wait: 0 }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'the tab\'s token, on another instance')
    t.equal((await poll(C, other.token, { wait: 0 })).status, 200, 'another user is not touched')
    t.same(await B.app.longPoll.userSessions('ann'), [])
  })

  t.test('stats().sessions and members() are the same on every instance', async (t) => {
    const { servers } = await cluster(t, 3)
    const sessions = []
    for (let i = 0; i < 6; i++) {
      sessions.push(await register(servers[i % 3] as TestServer, { rooms: i < 4 ? ['m'] : [], profile: { i } }))
    }
    const ids = (list: Array<{ id: string }>): string[] => list.map((m) => m.id).sort()
    const expected = sessions.slice(0, 4).map((s) => s.id).sort()
    for (const [i, s] of servers.entries()) {
      t.equal((await s.app.longPoll.stats()).sessions, 6, `stats().sessions on instance ${i}`)
      t.same(ids(await s.app.longPoll.members('m')), expected, `members('m') on instance ${i}`)
      t.same(ids(await s.app.longPoll.members()), sessions.map((x) => x.id).sort(), `members() on instance ${i}`)
      const res = await members(s, (sessions[i] as { token: string }).token, 'm')
      t.same(ids(res.body.members), expected, `GET /rooms/m/members on instance ${i}`)
    }
  })

  t.test('an instance closed mid-poll: the client re-polls on another, nothing lost', async (t) => {
    const [A, B, C] = (await cluster(t, 3)).servers as Three
    const s = await register(A)
    await C.app.longPoll.send(s.id, 'before')
    const r1 = await pollOk(B, s.token, { cursor: s.cursor, wait: 0 })
    t.same(data(r1.messages), ['before'])
    const held = poll(B, s.token, { cursor: r1.cursor, wait: 4000 })
    await waitHeld(B, 1)
    const closing = B.close()
    const res = await held
    expectError(t, res, 503, 'LONGPOLL_SHUTTING_DOWN', 'the poll held by the closing instance')
    await C.app.longPoll.send(s.id, 'while B closes')
    await closing
    await C.app.longPoll.send(s.id, 'after')
    const r2 = await pollOk(A, s.token, { cursor: r1.cursor, wait: 0 })
    t.same(data(r2.messages), ['while B closes', 'after'], 'everything after the cursor, on A')
    t.equal(r2.missed, 0)
  })

  t.test('Redis outage: 503 at once, held polls answered, no crash, service resumes by itself', { skip: noRedisServer }, async (t) => {
    const redis = await privateRedis(t)
    const port = redis.port
    const probe = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => 20 })
    probe.on('error', () => {})
    t.teardown(() => probe.disconnect())
    await waitFor(() => probe.ping().then(() => true, () => false), 'the private redis-server', 5000)

    const [A, B] = (await cluster(t, 2, {}, { port })).servers as Three
    const s = await register(A)
    const other = await register(B)
    const held = poll(B, s.token, { cursor: s.cursor, wait: 4000 })
    await waitHeld(B, 1)

    redis.stop()
    const res = await held
    expectError(t, res, 503, 'LONGPOLL_STORE_UNAVAILABLE', 'the held poll')
    t.ok(res.ms < 3000, `answered when Redis went away, not at the end of the hold (${res.ms} ms)`)
    t.ok(res.headers['retry-after'], 'with retry-after')
    for (const [what, r] of [
      ['register', await A.request({ method: 'POST', path: '/register' })],
      ['poll', await poll(A, s.token, { cursor: s.cursor, wait: 4000 })],
      ['send', await send(B, other.token, { data: 'x' })],
      ['members', await members(A, s.token, 'r')]
    ] as const) {
      expectError(t, r, 503, 'LONGPOLL_STORE_UNAVAILABLE', what)
      t.ok(r.headers['retry-after'], `${what}: retry-after`)
      t.ok(r.ms < 1000, `${what}: at once (${r.ms} ms), not after waiting for a reconnect`)
    }
    await t.rejects(A.app.longPoll.broadcast('x'), { code: 'LONGPOLL_STORE_UNAVAILABLE' }, 'the decorator rejects too')

    // Back up (empty: no persistence). Nothing restarts the instances; they recover on their own.
    redis.start()
    const fresh: { id: string, token: string, cursor: string } = await waitFor(async () => {
      const r = await A.request({ method: 'POST', path: '/register' })
      return r.status === 201 ? r.body : null
    }, 'registering again', 5000)
    t.ok(fresh.token, 'A registers sessions again')
    const peer: { id: string, token: string } = await waitFor(async () => {
      const r = await B.request({ method: 'POST', path: '/register' })
      return r.status === 201 ? r.body : null
    }, 'B registering again', 5000)
    const again = pollOk(A, fresh.token, { cursor: fresh.cursor, wait: 4000 })
    await waitHeld(A, 1)
    t.equal((await send(B, peer.token, { to: fresh.id, data: 'back' })).status, 202)
    const answer = await again
    t.same(data(answer.messages), ['back'], 'a publish on B wakes a poll held on A again (the subscribers resubscribed)')
    t.equal((await poll(A, s.token, { wait: 0 })).status, 401, 'sessions of the lost data set are gone (register again)')
  })
})
