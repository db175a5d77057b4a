/**
 * The in-memory store: the shared store contract, plus what is particular to this store
 * (one shared object per message, no clock reads, synchronous events, lazy expiry, compaction).
 */
import t, { type Test } from 'tap'
import { MemoryStore } from '../lib/stores/memory.js'
import type { PublishTarget, StoreConfig, StoreEvent } from '../types/index.js'
import { outgoing, sha256 } from './helpers/store.js'
import { storeContract } from './store-contract/index.js'

storeContract(t, 'memory', async () => ({ store: new MemoryStore(), cleanup: async () => {} }))

const CONFIG: StoreConfig = {
  messageTtl: 30_000,
  sessionTtl: 60_000,
  maxMailboxMessages: 50,
  maxSessions: 10_000,
  maxRoomsPerSession: 5
}

async function setup (tt: Test, config: Partial<StoreConfig> = {}): Promise<{ store: MemoryStore, events: StoreEvent[] }> {
  const store = new MemoryStore()
  const events: StoreEvent[] = []
  await store.init({ ...CONFIG, ...config }, (e) => { events.push(e) })
  tt.teardown(() => store.close())
  return { store, events }
}

async function create (store: MemoryStore, id: string, now: number, rooms: string[] = []): Promise<void> {
  if (!await store.createSession({ id, tokenHash: sha256(id), profile: null, rooms }, now)) throw new Error('createSession failed')
}

async function readAll (store: MemoryStore, id: string, cursor: number | null, now: number, limit = 1000): Promise<{ messages: string[], cursor: number, missed: number }> {
  const r = await store.read(id, cursor, limit, now)
  if (r === null || r === 'bad-cursor') throw new Error(`read returned ${String(r)}`)
  return r
}

t.test('a broadcast reads the message once and every mailbox returns that one string', async (t) => {
  const { store } = await setup(t)
  const T0 = 1_000_000
  const n = 500
  for (let i = 0; i < n; i++) await create(store, `s${i}`, T0)

  const json = JSON.stringify({ id: 'big', data: 'x'.repeat(10_000) })
  let jsonReads = 0
  let targetReads = 0
  const target: PublishTarget = { kind: 'all' }
  const msg = {
    id: 'big',
    ts: T0,
    get json () { jsonReads++; return json },
    get target () { targetReads++; return target }
  }
  t.equal(await store.publish(msg, T0), n)
  t.equal(jsonReads, 1, 'the serialized message is taken once for 500 recipients (no per-recipient copy)')
  t.equal(targetReads, 1)
  const first = await readAll(store, 's0', 0, T0 + 1)
  const last = await readAll(store, `s${n - 1}`, 0, T0 + 1)
  t.equal(first.messages[0], json)
  t.equal(last.messages[0], first.messages[0], 'two mailboxes return identical json')
  t.same(await store.stats(), { sessions: n, queued: n, delivered: 2, dropped: 0 })
})

t.test('a publish to one session touches no other mailbox and wakes only it', async (t) => {
  const { store, events } = await setup(t)
  const T0 = 1_000_000
  for (let i = 0; i < 1000; i++) await create(store, `s${i}`, T0, i % 2 === 0 ? ['even'] : [])
  events.length = 0
  t.equal(await store.publish(outgoing({ kind: 'session', id: 's500' }, 'hi', T0), T0), 1)
  t.same(events, [{ type: 'wake', sessions: ['s500'] }], 'one synchronous wake event, for s500 only')
  t.equal((await store.stats()).queued, 1, 'one mailbox entry in the whole store')
  t.same((await readAll(store, 's499', 0, T0)).messages, [])
  t.same((await readAll(store, 's501', 0, T0)).messages, [])
  t.equal((await readAll(store, 's500', 0, T0)).messages.length, 1)

  events.length = 0
  t.equal(await store.publish(outgoing({ kind: 'room', room: 'even' }, 'evens', T0), T0), 500)
  t.equal(events.length, 1, 'a room publish emits one wake event')
  const ev = events[0]
  t.ok(ev.type === 'wake' && ev.sessions !== null && ev.sessions.length === 500 && ev.sessions.every((id) => Number(id.slice(1)) % 2 === 0))
  t.equal((await store.stats()).queued, 501)
})

t.test('events are emitted synchronously, and none for a publish without recipients', async (t) => {
  const { store, events } = await setup(t)
  const T0 = 1_000_000
  await create(store, 'a', T0)
  const p = store.publish(outgoing({ kind: 'all' }, 1, T0), T0)
  t.same(events, [{ type: 'wake', sessions: null }], 'emitted before the promise is awaited')
  await p
  events.length = 0
  await store.publish(outgoing({ kind: 'room', room: 'nobody' }, 1, T0), T0)
  await store.publish(outgoing({ kind: 'session', id: 'nobody' }, 1, T0), T0)
  t.same(events, [], 'nobody to wake')
  const seq = store.beginPoll('a', 1000, T0)
  t.same(events, [{ type: 'poll', sessionId: 'a', seq: 1 }])
  t.equal(await seq, 1)
})

t.test('the store never reads the clock: all time comes from `now`', async (t) => {
  const realNow = Date.now
  Date.now = () => { throw new Error('the store read the clock') }
  t.teardown(() => { Date.now = realNow })
  const perf = performance.now
  performance.now = () => { throw new Error('the store read the clock') }
  t.teardown(() => { performance.now = perf })

  const { store, events } = await setup(t, { messageTtl: 100, sessionTtl: 1000 })
  // Time starts at 0 here: any confusion with the wall clock would show.
  await create(store, 'a', 0, ['r'])
  await create(store, 'b', 0, ['r'])
  await store.publish(outgoing({ kind: 'room', room: 'r' }, 1, 0), 0)
  t.equal((await readAll(store, 'a', 0, 99)).messages.length, 1)
  const late = await readAll(store, 'b', 0, 100)
  t.same([late.messages.length, late.missed], [0, 1], 'expired exactly at ts + messageTtl')
  t.equal((await store.authenticate(sha256('b'), 500))?.lastSeen, 500)
  t.equal((await store.authenticate(sha256('a'), 999))?.lastSeen, 999)
  t.same(await store.sweep(1499), [])
  t.same((await store.sweep(1500)).map((s) => s.id), ['b'], 'b idle since 500 expires at 1500')
  t.same(events.filter((e) => e.type === 'ended'), [{ type: 'ended', sessionId: 'b' }])
})

t.test('members() hides sessions that expired but are not swept yet', async (t) => {
  const { store } = await setup(t, { sessionTtl: 1000 })
  await create(store, 'a', 0, ['r'])
  await create(store, 'b', 0, ['r'])
  await store.authenticate(sha256('b'), 600)
  t.same((await store.members('r')).map((m) => m.id), ['a', 'b'])
  // The latest `now` the store has seen is its notion of the present for methods without `now`.
  await store.authenticate(sha256('b'), 1200)
  t.same((await store.members('r')).map((m) => m.id), ['b'], 'a is past sessionTtl')
  t.same((await store.members()).map((m) => m.id), ['b'])
  t.equal(await store.authenticate(sha256('a'), 1200), null, 'its token is refused')
  t.equal((await store.authenticate(sha256('b'), 1200))?.id, 'b')
  t.equal(await store.publish(outgoing({ kind: 'all' }, 1, 1200), 1200), 1, 'and publishes skip it')
  t.equal(await store.publish(outgoing({ kind: 'session', id: 'a' }, 1, 1200), 1200), 0)
  t.equal(await store.publish(outgoing({ kind: 'room', room: 'r' }, 1, 1200), 1200), 1)
  t.same((await store.sweep(1200)).map((s) => s.id), ['a'], 'the sweep still reports it, once')
  t.same(await store.sweep(1300), [])
})

t.test('sweep stops at the first live session (idle order follows the last touch)', async (t) => {
  const { store } = await setup(t, { sessionTtl: 1000 })
  for (let i = 0; i < 10; i++) await create(store, `s${i}`, i * 100)
  // Touch s0 and s5 late: they move to the end of the idle order.
  await store.authenticate(sha256('s0'), 950)
  await store.authenticate(sha256('s5'), 960)
  const seq = await store.beginPoll('s3', 1000, 970)
  t.same((await store.sweep(1450)).map((s) => s.id), ['s1', 's2', 's4'], 'expired in idle order, the held s3 kept')
  t.same((await store.sweep(1949)).map((s) => s.id), ['s6', 's7', 's8', 's9'])
  t.same((await store.sweep(1960)).map((s) => s.id), ['s0', 's5'])
  await store.endPoll('s3', seq as number, 2000)
  t.same(await store.sweep(2999), [])
  t.same((await store.sweep(3000)).map((s) => s.id), ['s3'])
  t.same(await store.stats(), { sessions: 0, queued: 0, delivered: 0, dropped: 0 })
})

t.test('a long stream through one mailbox: compaction keeps order and counts', async (t) => {
  const { store } = await setup(t, { maxMailboxMessages: 100 })
  await create(store, 'a', 0)
  let cursor = 0
  const got: number[] = []
  let now = 0
  for (let i = 0; i < 5000; i++) {
    await store.publish(outgoing({ kind: 'session', id: 'a' }, i, now), now)
    if (i % 37 === 36) {
      // Read in small batches, acknowledging as we go, sometimes resending the old cursor.
      const r = await readAll(store, 'a', cursor, ++now, 50)
      const again = await readAll(store, 'a', cursor, now, 50)
      t.same(again.messages, r.messages, 'a resend returns the same batch')
      for (const m of r.messages) got.push((JSON.parse(m) as { data: number }).data)
      cursor = r.cursor
      if (r.missed !== 0) t.fail(`missed ${r.missed} at ${i}`)
    }
  }
  for (;;) {
    const r = await readAll(store, 'a', cursor, ++now, 20)
    if (r.messages.length === 0) break
    for (const m of r.messages) got.push((JSON.parse(m) as { data: number }).data)
    cursor = r.cursor
  }
  t.equal(got.length, 5000, 'every message, none missed')
  t.ok(got.every((v, i) => v === i), 'in order')
  t.equal(cursor, 5000, 'the cursor is the sequence number of the last message')
  const st = await store.stats()
  t.same(st, { sessions: 1, queued: 0, delivered: 5000, dropped: 0 })
})

t.test('overflow on a long unread stream counts every undelivered drop', async (t) => {
  const { store } = await setup(t, { maxMailboxMessages: 10 })
  await create(store, 'a', 0)
  for (let i = 0; i < 3000; i++) await store.publish(outgoing({ kind: 'session', id: 'a' }, i, i), i)
  const r = await readAll(store, 'a', null, 3000)
  t.equal(r.missed, 2990)
  t.same(r.messages.map((m) => (JSON.parse(m) as { data: number }).data), Array.from({ length: 10 }, (_, i) => 2990 + i))
  t.equal(r.cursor, 3000)
  t.same(await store.stats(), { sessions: 1, queued: 10, delivered: 10, dropped: 2990 })
})

t.test('close() clears everything and silences events', async (t) => {
  const { store, events } = await setup(t)
  await create(store, 'a', 0, ['r'])
  await store.publish(outgoing({ kind: 'all' }, 1, 0), 0)
  events.length = 0
  await store.close()
  t.equal((await store.stats()).sessions, 0)
  t.equal((await store.stats()).queued, 0)
  t.equal(await store.authenticate(sha256('a'), 1), null)
  t.same(await store.members('r'), [])
  t.equal(await store.publish(outgoing({ kind: 'all' }, 2, 1), 1), 0)
  t.same(events, [])
})

t.test('works with default settings before init', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  await create(store, 'a', 0)
  for (let i = 0; i < 1001; i++) await store.publish(outgoing({ kind: 'session', id: 'a' }, i, 0), 0)
  const r = await readAll(store, 'a', null, 1, 5000)
  t.same([r.messages.length, r.missed], [1000, 1], 'maxMailboxMessages defaults to 1000')
  t.same(await store.sweep(299_999), [])
  t.same((await store.sweep(300_000)).map((s) => s.id), ['a'], 'sessionTtl defaults to 5 min')
})
