/**
 * The in-memory store v2: the store contract v2, plus what is particular to this store (one
 * string per message whatever the audience, one wake per publish, synchronous answers and
 * events, no clock reads, idle order, sequence numbers, memory freed by age).
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t, { type Test } from 'tap'
import { MemoryStore } from '../lib/stores/memory/index.js'
import type { LogTarget, OutgoingMessage, ReadResult, StoreConfig, StoreEvent } from '../lib/stores/store.js'
import { sha256 as hash } from './helpers/store.js'
import { storeContract } from './store-contract/index.js'

storeContract(t, 'memory', async () => ({ store: new MemoryStore(), cleanup: async () => {} }), { modelRuns: 200 })

const CONFIG: StoreConfig = {
  messageTtl: 30_000,
  sessionTtl: 60_000,
  maxMailboxMessages: 50,
  maxSessions: 10_000,
  maxRoomsPerSession: 5,
  maxSessionsPerUser: 0,
  history: null
}
const ALL = { limit: 1000, maxBytes: 1 << 30 }

let counter = 0
function message (target: LogTarget, data: unknown, ts: number): OutgoingMessage {
  const id = `m${++counter}`
  return { id, ts, json: JSON.stringify({ id, type: 'message', from: null, room: null, to: null, data, ts }), target }
}

async function setup (tt: Test, config: Partial<StoreConfig> = {}): Promise<{ store: MemoryStore, events: StoreEvent[] }> {
  const store = new MemoryStore()
  const events: StoreEvent[] = []
  await store.init({ ...CONFIG, ...config }, (e) => { events.push(e) })
  tt.teardown(() => store.close())
  return { store, events }
}

function create (store: MemoryStore, id: string, now: number, rooms: string[] = [], user: string | null = null): void {
  const r = store.createSession({ id, tokenHash: hash(id), profile: null, user, context: null, rooms }, now)
  if (!r.ok) throw new Error(`createSession failed: ${JSON.stringify(r)}`)
}

function readAll (store: MemoryStore, id: string, cursor: number | null, now: number, limit = 1000): ReadResult {
  const r = store.read(id, cursor, { limit, maxBytes: ALL.maxBytes }, now)
  if (r === null || r === 'bad-cursor') throw new Error(`read returned ${String(r)}`)
  return r
}

const data = (r: ReadResult): unknown[] => r.messages.map((m) => (JSON.parse(m) as { data: unknown }).data)

t.test('a broadcast reads the message once and every mailbox returns that one string', async (t) => {
  const { store } = await setup(t)
  const T0 = 1_000_000
  const n = 500
  for (let i = 0; i < n; i++) create(store, `s${i}`, T0)

  const json = JSON.stringify({ id: 'big', data: 'x'.repeat(10_000) })
  let jsonReads = 0
  let targetReads = 0
  const target: LogTarget = { kind: 'all' }
  const msg = {
    id: 'big',
    ts: T0,
    get json () { jsonReads++; return json },
    get target () { targetReads++; return target }
  }
  t.equal(store.publish(msg, T0), n)
  t.equal(jsonReads, 1, 'the serialized message is taken once for 500 recipients (no per-recipient copy)')
  t.equal(targetReads, 1)
  const first = readAll(store, 's0', 0, T0 + 1)
  const last = readAll(store, `s${n - 1}`, 0, T0 + 1)
  t.equal(first.messages[0], json)
  t.equal(last.messages[0], first.messages[0], 'two mailboxes return identical json')
  t.same(store.stats(), { sessions: n, queued: 1, delivered: 2, dropped: 0 }, 'stored once')
})

t.test('a publish touches one log and emits one synchronous wake naming it', async (t) => {
  const { store, events } = await setup(t)
  const T0 = 1_000_000
  for (let i = 0; i < 1000; i++) create(store, `s${i}`, T0, i % 2 === 0 ? ['even'] : [], i % 10 === 0 ? 'tens' : null)
  events.length = 0
  t.equal(store.publish(message({ kind: 'session', id: 's500' }, 'hi', T0), T0), 1)
  t.same(events, [{ type: 'wake', log: 's:s500' }], 'one wake event, for s500 only')
  t.equal(store.stats().queued, 1, 'one entry in the whole store')
  t.same(readAll(store, 's499', 0, T0).messages, [])
  t.same(readAll(store, 's501', 0, T0).messages, [])
  t.equal(readAll(store, 's500', 0, T0).messages.length, 1)

  events.length = 0
  t.equal(store.publish(message({ kind: 'room', room: 'even' }, 'evens', T0), T0), 500)
  t.same(events, [{ type: 'wake', log: 'r:even' }], 'a room publish: one event, no recipient list')
  t.equal(store.publish(message({ kind: 'user', user: 'tens' }, 'tens', T0), T0), 100)
  t.same(events.slice(1), [{ type: 'wake', log: 'u:tens' }])
  t.equal(store.stats().queued, 3)
})

t.test('answers and events are synchronous, and no event for a publish without recipients', async (t) => {
  const { store, events } = await setup(t)
  const T0 = 1_000_000
  create(store, 'a', T0)
  const n = store.publish(message({ kind: 'all' }, 1, T0), T0)
  t.equal(n, 1, 'publish answers with a value, not a Promise')
  t.same(events, [{ type: 'wake', log: 'all' }], 'emitted before publish returns')
  events.length = 0
  store.publish(message({ kind: 'room', room: 'nobody' }, 1, T0), T0)
  store.publish(message({ kind: 'session', id: 'nobody' }, 1, T0), T0)
  store.publish(message({ kind: 'user', user: 'nobody' }, 1, T0), T0)
  t.same(events, [], 'nobody to wake')
  const r = store.read('a', 0, ALL, T0)
  t.notOk(r instanceof Promise, 'read answers with a value')
  t.same(data(r as ReadResult), [1])
  const p = store.poll(hash('a'), (r as ReadResult).cursor, 1000, ALL, T0)
  t.notOk(p instanceof Promise, 'poll answers with a value')
  t.equal(p.ok && p.seq, 1, 'held')
  t.same(events, [{ type: 'poll', sessionId: 'a', seq: 1 }], 'its poll event emitted before poll returns')
})

t.test('the store never reads the clock: all time comes from `now`', async (t) => {
  const realNow = Date.now
  Date.now = () => { throw new Error('the store read the clock') }
  t.teardown(() => { Date.now = realNow })
  const perf = performance.now
  performance.now = () => { throw new Error('the store read the clock') }
  t.teardown(() => { performance.now = perf })

  const { store, events } = await setup(t, { messageTtl: 100, sessionTtl: 1000, history: { maxMessages: 10, maxAge: 200 } })
  // Time starts at 0 here: any confusion with the wall clock would show.
  create(store, 'a', 0, ['r'])
  create(store, 'b', 0, ['r'])
  store.publish(message({ kind: 'room', room: 'r' }, 1, 0), 0)
  t.equal(readAll(store, 'a', 0, 99).messages.length, 1)
  const late = readAll(store, 'b', 0, 100)
  t.same([late.messages.length, late.missed], [0, 1], 'expired exactly at ts + messageTtl')
  t.equal(store.history('r', null, 10, 199).items.length, 1)
  t.equal(store.history('r', null, 10, 200).items.length, 0, 'out of history exactly at ts + maxAge')
  const auth = store.authenticate(hash('b'), 500)
  t.equal(auth.ok && auth.session.lastSeen, 500)
  t.equal(store.authenticate(hash('a'), 999).ok, true)
  t.same(store.sweep(1499, 100), [])
  t.same(store.sweep(1500, 100).map((s) => s.id), ['b'], 'b idle since 500 expires at 1500')
  t.same(events.filter((e) => e.type === 'ended'), [{ type: 'ended', sessionId: 'b' }])
})

t.test('expired sessions not swept yet: hidden, not counted by a broadcast; a room counts its member set', async (t) => {
  const { store } = await setup(t, { sessionTtl: 1000 })
  create(store, 'a', 0, ['r'])
  create(store, 'b', 0, ['r'])
  store.authenticate(hash('b'), 600)
  t.same(store.members('r', null, 100, 999).items.map((m) => m.id), ['a', 'b'])
  t.same(store.members('r', null, 100, 1200).items.map((m) => m.id), ['b'], 'a is past sessionTtl')
  t.same(store.members(null, null, 100, 1200).items.map((m) => m.id), ['b'])
  t.equal(store.lookup('a', 1200), null)
  t.same(store.lookup('b', 1200), { id: 'b', user: null })
  t.equal(store.publish(message({ kind: 'all' }, 1, 1200), 1200), 1, 'a broadcast counts the live sessions only')
  t.equal(store.publish(message({ kind: 'session', id: 'a' }, 1, 1200), 1200), 0)
  t.equal(store.publish(message({ kind: 'room', room: 'r' }, 1, 1200), 1200), 2, 'a room counts its members until the sweep (O(1))')
  t.same(store.sweep(1200, 100).map((s) => s.id), ['a'], 'the sweep still reports it, once')
  t.same(store.sweep(1300, 100), [])
  t.equal(store.publish(message({ kind: 'room', room: 'r' }, 1, 1300), 1300), 1)
  t.equal(store.publish(message({ kind: 'all' }, 1, 1300), 1300), 1)
})

t.test('sweep takes the idle sessions in last-touch order and stops at the first live one', async (t) => {
  const { store } = await setup(t, { sessionTtl: 1000 })
  for (let i = 0; i < 10; i++) create(store, `s${i}`, i * 100)
  // Touch s0 and s5 late: they move to the end of the idle order.
  store.authenticate(hash('s0'), 950)
  store.authenticate(hash('s5'), 960)
  const p = store.poll(hash('s3'), 0, 1000, ALL, 970)
  t.same(store.sweep(1450, 2).map((s) => s.id), ['s1', 's2'], 'at most limit, oldest first')
  t.same(store.sweep(1450, 100).map((s) => s.id), ['s4'], 'the held s3 kept')
  t.same(store.sweep(1949, 100).map((s) => s.id), ['s6', 's7', 's8', 's9'])
  t.same(store.sweep(1960, 100).map((s) => s.id), ['s0', 's5'])
  store.endPoll('s3', p.ok ? p.seq : 0, 2000)
  t.same(store.sweep(2999, 100), [])
  t.same(store.sweep(3000, 100).map((s) => s.id), ['s3'])
  t.same(store.stats(), { sessions: 0, queued: 0, delivered: 0, dropped: 0 })
})

t.test('a long stream through one session: order, counts, and cursors that are acceptance numbers', async (t) => {
  const { store } = await setup(t, { maxMailboxMessages: 100 })
  create(store, 'a', 0)
  let cursor = 0
  const got: number[] = []
  let now = 0
  for (let i = 0; i < 5000; i++) {
    store.publish(message({ kind: 'session', id: 'a' }, i, now), now)
    if (i % 37 === 36) {
      // Read in small batches, acknowledging as we go, sometimes resending the old cursor.
      const r = readAll(store, 'a', cursor, ++now, 50)
      const again = readAll(store, 'a', cursor, now, 50)
      t.same(again.messages, r.messages, 'a resend returns the same batch')
      got.push(...(data(r) as number[]))
      cursor = r.cursor
      if (r.missed !== 0) t.fail(`missed ${r.missed} at ${i}`)
    }
  }
  for (;;) {
    const r = readAll(store, 'a', cursor, ++now, 20)
    if (r.messages.length === 0) break
    got.push(...(data(r) as number[]))
    cursor = r.cursor
  }
  t.equal(got.length, 5000, 'every message, none missed')
  t.ok(got.every((v, i) => v === i), 'in order')
  t.equal(cursor, 5000, 'the cursor of the memory store is the g of the last message: 5000 accepted')
  t.same(store.stats(), { sessions: 1, queued: 0, delivered: 5000, dropped: 0 })
})

t.test('overflow on a long unread stream counts every undelivered drop', async (t) => {
  const { store } = await setup(t, { maxMailboxMessages: 10 })
  create(store, 'a', 0)
  for (let i = 0; i < 3000; i++) store.publish(message({ kind: 'session', id: 'a' }, i, i), i)
  t.equal(store.stats().queued, 10, 'the inbox never holds more than maxMailboxMessages')
  const r = readAll(store, 'a', null, 3000)
  t.equal(r.missed, 2990)
  t.same(data(r), Array.from({ length: 10 }, (_, i) => 2990 + i))
  t.equal(r.cursor, 3000)
  t.same(store.stats(), { sessions: 1, queued: 10, delivered: 10, dropped: 2990 })
})

t.test('a former member does not pin the room\'s log', async (t) => {
  const { store } = await setup(t, { maxMailboxMessages: 10 })
  create(store, 'a', 0, ['r'])
  create(store, 'b', 0, ['r'])
  for (let i = 0; i < 8; i++) store.publish(message({ kind: 'room', room: 'r' }, i, 1), 1)
  store.leave('a', 'r', 2)
  for (let i = 8; i < 3000; i++) store.publish(message({ kind: 'room', room: 'r' }, i, 3), 3)
  t.equal(store.stats().queued, 10, 'the room\'s log is trimmed to maxMailboxMessages while a has not read')
  t.same(data(readAll(store, 'a', null, 4)), [0, 1, 2, 3, 4, 5, 6, 7], 'a still gets what it was there for')
})

t.test('an inbox and a user\'s log are freed with their last reader, unread', async (t) => {
  const { store } = await setup(t)
  create(store, 'a', 0, [], 'u')
  create(store, 'b', 0, [], 'u')
  store.publish(message({ kind: 'session', id: 'a' }, 1, 0), 0)
  store.publish(message({ kind: 'user', user: 'u' }, 2, 0), 0)
  t.equal(store.stats().queued, 2)
  store.endSession('a')
  t.equal(store.stats().queued, 1, 'a\'s inbox went with it; the user log stays for b')
  store.endSession('b')
  t.equal(store.stats().queued, 0, 'the user log went with the user\'s last session')
  create(store, 'c', 0, [], 'u')
  t.same(data(readAll(store, 'c', 0, 1)), [], 'a new session of the user starts afresh')
})

t.test('malformed page cursors give an empty page (the core rejects them first)', async (t) => {
  const { store } = await setup(t, { history: { maxMessages: 10, maxAge: 1000 } })
  create(store, 'a', 0, ['r'])
  store.publish(message({ kind: 'room', room: 'r' }, 1, 0), 0)
  for (const bad of ['', '-1', '01', '1.5', 'x', '12345678901234567']) {
    t.same(store.members('r', bad, 10, 1), { items: [], next: null }, `members after ${JSON.stringify(bad)}`)
    t.same(store.history('r', bad, 10, 1), { items: [], next: null }, `history before ${JSON.stringify(bad)}`)
  }
  t.equal(store.members('r', '0', 10, 1).items.length, 1, 'the 16-digit decimal form is fine')
})

t.test('close() clears everything and silences events', async (t) => {
  const { store, events } = await setup(t)
  create(store, 'a', 0, ['r'])
  store.publish(message({ kind: 'all' }, 1, 0), 0)
  events.length = 0
  await store.close()
  t.equal(store.stats().sessions, 0)
  t.equal(store.stats().queued, 0)
  t.same(store.authenticate(hash('a'), 1), { ok: false, reason: 'unknown' })
  t.same(store.members('r', null, 10, 1), { items: [], next: null })
  t.equal(store.publish(message({ kind: 'all' }, 2, 1), 1), 0)
  t.same(events, [])
})

t.test('works with default settings before init', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  create(store, 'a', 0)
  for (let i = 0; i < 1001; i++) store.publish(message({ kind: 'session', id: 'a' }, i, 0), 0)
  const r = readAll(store, 'a', null, 1, 5000)
  t.same([r.messages.length, r.missed], [1000, 1], 'maxMailboxMessages defaults to 1000')
  t.same(store.sweep(299_999, 100), [])
  t.same(store.sweep(300_000, 100).map((s) => s.id), ['a'], 'sessionTtl defaults to 5 min')
})

t.test('expired messages leave the heap after messageTtl, unread, without a timer', async (t) => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const { store } = await setup(t, { messageTtl: 1000, sessionTtl: 1e9, maxMailboxMessages: 1000 })
  create(store, 'a', 0, ['r'], 'u')
  create(store, 'b', 0, ['r', 'q'])
  const size = 64 * 1024
  const n = 400
  const targets: LogTarget[] = [{ kind: 'all' }, { kind: 'room', room: 'r' }, { kind: 'session', id: 'a' }, { kind: 'user', user: 'u' }, { kind: 'room', room: 'q' }]
  for (let i = 0; i < n; i++) {
    // A flat string of its own per message (no shared rope).
    const big = Buffer.alloc(size, 97 + (i % 26)).toString('latin1')
    store.publish({ id: `m${i}`, ts: 0, json: `{"id":"m${i}","data":"${big}"}`, target: targets[i % targets.length] }, 0)
  }
  // b leaves both rooms with 80 unread messages each: its private copies must not keep them
  // alive either, also when the room's log itself is gone (q had no other member).
  store.leave('b', 'r', 1)
  store.leave('b', 'q', 1)
  t.equal(store.stats().queued, n - 80, 'the log of q is deleted; b keeps its messages')
  gc()
  gc()
  const before = process.memoryUsage().heapUsed
  store.sweep(500, 100)
  t.equal(store.stats().queued, n - 80, 'not expired yet')
  store.sweep(1001, 100)
  t.equal(store.stats().queued, 0, 'a sweep past messageTtl freed all of them')
  gc()
  gc()
  const freed = before - process.memoryUsage().heapUsed
  t.ok(freed > 0.9 * n * size, `the heap shrank by ${(freed / 2 ** 20).toFixed(1)} MiB of the ${(n * size / 2 ** 20).toFixed(0)} MiB of messages`)
  const ra = readAll(store, 'a', 0, 1002)
  const rb = readAll(store, 'b', 0, 1002)
  t.same([data(ra), ra.missed, data(rb), rb.missed], [[], 320, [], 240], 'and they count as missed')
})

t.test('endPoll after the read that answered the hold: idle time counts from endPoll; an expired session is not revived', async (t) => {
  const { store } = await setup(t, { sessionTtl: 1000 })
  create(store, 'a', 0)
  create(store, 'b', 0)
  for (const id of ['a', 'b']) {
    const p = store.poll(hash(id), 0, 5000, ALL, 100)
    t.equal(p.ok && p.seq, 1, `${id}: held`)
    store.publish(message({ kind: 'session', id }, id, 200), 200)
    // The delivery core's order: the read after the wake-up answers (and ends the hold), then
    // the answered poll ends.
    t.same(data(store.read(id, 0, ALL, 300, 1) as ReadResult), [id], `${id}: the read answers the hold`)
  }
  store.endPoll('a', 1, 400)
  store.endPoll('b', 1, 1300) // b has been idle for sessionTtl since the read at 300
  t.same(store.sweep(1399, 100).map((s) => s.id), ['b'], 'b expired at 1300: its late endPoll did not revive it')
  t.same(store.sweep(1400, 100).map((s) => s.id), ['a'], 'a idle since its endPoll at 400')
})

t.test('a stale timestamp: an entry that expired behind a younger one in a former member\'s unread copy counts as missed', async (t) => {
  const { store } = await setup(t, { messageTtl: 100, maxMailboxMessages: 2 })
  create(store, 'a', 1000, ['r'])
  create(store, 'b', 1000, ['r'])
  store.publish(message({ kind: 'room', room: 'r' }, 'young', 1000), 1000)
  // Accepted after "young" with an older timestamp (a clock stepped back): already past messageTtl.
  store.publish(message({ kind: 'room', room: 'r' }, 'stale', 500), 1000)
  t.same(store.leave('a', 'r', 1000), { left: true, size: 1 }, 'a leaves with both unread: they stay its own')
  // Over the room's cap: "young" leaves the room log (still live: kept for a), "stale" is freed.
  store.publish(message({ kind: 'room', room: 'r' }, 'later', 1000), 1000)
  const r = readAll(store, 'a', 0, 1000)
  t.same(data(r), ['young'], 'the live one is delivered')
  t.equal(r.missed, 1, 'the expired one behind it is counted as missed, once')
  t.equal(readAll(store, 'a', r.cursor, 1001).missed, 0)
})
