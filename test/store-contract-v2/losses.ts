/** Store contract v2: losing messages (messageTtl, overflow) and `missed`, within and across logs. */
import type { Test } from 'tap'
import type { LogTarget } from '../../lib/stores/store.js'
import { ALL, decode, type Setup } from './helpers.js'

export function lossCases (t: Test, setup: Setup): void {
  t.test('messageTtl: an undelivered message expires, counted in missed exactly once', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, { messageTtl: 10_000 })
    const a = await session(T0)
    await publish({ kind: 'session', id: a.id }, 'old', T0)
    await publish({ kind: 'session', id: a.id }, 'new', T0 + 8000)

    const before = await store.read(a.id, null, { limit: 1, maxBytes: ALL.maxBytes }, T0 + 9500)
    t.same(before !== null && before !== 'bad-cursor' ? [before.missed, before.messages.map(decode)] : before, [0, ['old']],
      'nothing expired before messageTtl')

    const r = await read(a.id, 0, T0 + 12_000)
    t.same(r.data, ['new'], 'the expired message is gone, the younger one is there')
    t.equal(r.missed, 0, 'it had been delivered: not missed')
    const b = await session(T0)
    await publish({ kind: 'session', id: b.id }, 'old', T0)
    await publish({ kind: 'session', id: b.id }, 'new', T0 + 8000)
    const rb = await read(b.id, 0, T0 + 12_000)
    t.same(rb.data, ['new'])
    t.equal(rb.missed, 1, 'never delivered: counted as missed')
    const again = await read(b.id, 0, T0 + 12_001)
    t.same(again.data, ['new'])
    t.equal(again.missed, 0, 'counted once')

    const st = await store.stats()
    t.equal(st.dropped, 1, 'stats.dropped counts the expired undelivered message')
    t.equal(st.queued, 2, 'queued no longer counts the expired ones')
  })

  t.test('messageTtl: expiry of delivered messages is never counted as missed', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, { messageTtl: 10_000 })
    const a = await session(T0)
    await publish({ kind: 'session', id: a.id }, 1, T0)
    await publish({ kind: 'session', id: a.id }, 2, T0 + 1)
    const r1 = await read(a.id, 0, T0 + 2, 1)
    t.same(r1.data, [1], '1 delivered, not acknowledged')
    await store.authenticate(a.tokenHash, T0 + 9000)

    const r2 = await read(a.id, 0, T0 + 20_000)
    t.same(r2.messages, [], 'both expired')
    t.equal(r2.missed, 1, 'only the undelivered one is missed')
    t.equal(r2.cursor, 0, 'an empty answer keeps the request cursor')
    t.equal((await store.stats()).dropped, 1)
    t.equal((await store.stats()).queued, 0)

    // The cursor stays usable after everything it pointed past expired.
    await publish({ kind: 'session', id: a.id }, 3, T0 + 20_001)
    const r3 = await read(a.id, r2.cursor, T0 + 20_002)
    t.same(r3.data, [3])
    t.equal(r3.missed, 0)
    const r4 = await read(a.id, r1.cursor, T0 + 20_003)
    t.same(r4.data, [3], 'and so does the last one issued')
  })

  t.test('expiry of messages is counted for a mailbox nobody reads, reported by the next read', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, { messageTtl: 10_000 })
    const a = await session(T0)
    const r0 = await read(a.id, null, T0)
    for (let i = 0; i < 3; i++) await publish({ kind: 'session', id: a.id }, i, T0 + i)
    // A publish after the TTL may drop expired ones on the way; either way they count once.
    await publish({ kind: 'session', id: a.id }, 'fresh', T0 + 15_000)
    const r = await read(a.id, r0.cursor, T0 + 15_001)
    t.same(r.data, ['fresh'])
    t.equal(r.missed, 3)
    t.equal((await read(a.id, r.cursor, T0 + 15_002)).missed, 0)
    t.equal((await store.stats()).dropped, 3)
  })

  t.test('missed is reported even when the read returns no messages', async (t) => {
    const { session, publish, read, T0 } = await setup(t, { messageTtl: 10_000 })
    const a = await session(T0, { rooms: ['r'] })
    await publish({ kind: 'session', id: a.id }, 1, T0 + 1)
    await publish({ kind: 'room', room: 'r' }, 2, T0 + 2)
    await publish({ kind: 'all' }, 3, T0 + 3)
    const r = await read(a.id, 0, T0 + 20_000)
    t.same([r.messages, r.cursor, r.missed], [[], 0, 3], 'no messages, all three missed')
    t.same((await read(a.id, 0, T0 + 20_001)).missed, 0)
  })

  t.test('overflow drops the oldest and counts the undelivered ones in missed', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, { maxMailboxMessages: 3 })
    const a = await session(T0)
    for (let i = 1; i <= 5; i++) await publish({ kind: 'session', id: a.id }, i, T0 + i)
    t.equal((await store.stats()).queued, 3, 'a log holds at most maxMailboxMessages')
    const r = await read(a.id, 0, T0 + 10)
    t.same(r.data, [3, 4, 5], 'the oldest were dropped')
    t.equal(r.missed, 2)
    t.equal((await store.stats()).dropped, 2)
  })

  t.test('overflow of delivered but unacknowledged messages is not counted', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, { maxMailboxMessages: 3 })
    const a = await session(T0)
    for (let i = 1; i <= 3; i++) await publish({ kind: 'session', id: a.id }, i, T0 + i)
    const r1 = await read(a.id, 0, T0 + 4)
    t.same(r1.data, [1, 2, 3])
    await publish({ kind: 'session', id: a.id }, 4, T0 + 5)
    await publish({ kind: 'session', id: a.id }, 5, T0 + 6)

    const lost = await read(a.id, 0, T0 + 7)
    t.same(lost.data, [3, 4, 5], 'delivered messages count toward the limit and were dropped oldest first')
    t.equal(lost.missed, 0, 'they had been delivered: nothing missed')
    t.equal((await store.stats()).dropped, 0)
    const next = await read(a.id, lost.cursor, T0 + 8)
    t.same(next.messages, [])
  })

  t.test('missed resets after being reported and counts only new losses', async (t) => {
    const { session, publish, read, T0 } = await setup(t, { maxMailboxMessages: 2 })
    const a = await session(T0)
    for (let i = 1; i <= 4; i++) await publish({ kind: 'session', id: a.id }, i, T0 + i)
    const r1 = await read(a.id, null, T0 + 10)
    t.same(r1.data, [3, 4])
    t.equal(r1.missed, 2)
    const r2 = await read(a.id, r1.cursor, T0 + 11)
    t.equal(r2.missed, 0, 'reported once')
    for (let i = 5; i <= 9; i++) await publish({ kind: 'session', id: a.id }, i, T0 + i + 10)
    const r3 = await read(a.id, r2.cursor, T0 + 30)
    t.same(r3.data, [8, 9])
    t.equal(r3.missed, 3, 'only 5, 6, 7')
    const r4 = await read(a.id, r3.cursor, T0 + 31)
    t.equal(r4.missed, 0)
  })

  t.test('overflow across several logs: the oldest dropped first in acceptance order, missed exact', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, { maxMailboxMessages: 4 })
    const a = await session(T0, { rooms: ['r'], user: 'u' })
    const b = await session(T0, { rooms: ['r'] })
    const targets: LogTarget[] = [{ kind: 'all' }, { kind: 'room', room: 'r' }, { kind: 'session', id: a.id }, { kind: 'user', user: 'u' }]
    for (let i = 1; i <= 7; i++) await publish(targets[(i - 1) % 4], i, T0 + i)
    const r1 = await read(a.id, 0, T0 + 10, 2)
    t.same(r1.data, [4, 5], 'a: the 4 newest kept, 3 oldest (one from each of three logs) dropped')
    t.equal(r1.missed, 3)
    const rb = await read(b.id, 0, T0 + 10)
    t.same(rb.data, [1, 2, 5, 6], 'b, in two of those logs, lost nothing')
    t.equal(rb.missed, 0)

    // 4 and 5 delivered, not acknowledged; 6 and 7 undelivered; three more arrive.
    for (let i = 8; i <= 10; i++) await publish(targets[(i - 1) % 4], i, T0 + i + 10)
    const r2 = await read(a.id, 0, T0 + 30)
    t.same(r2.data, [7, 8, 9, 10], 'dropped oldest first: 4, 5 (delivered) and 6')
    t.equal(r2.missed, 1, 'only 6 was never delivered')
    t.equal((await store.stats()).dropped, 4)
    const r3 = await read(a.id, r2.cursor, T0 + 31)
    t.same([r3.data, r3.missed], [[], 0])
  })

  t.test('messageTtl across logs: expired ones dropped in order, the younger kept', async (t) => {
    const { session, publish, read, T0 } = await setup(t, { messageTtl: 10_000 })
    const a = await session(T0, { rooms: ['r'], user: 'u' })
    const targets: LogTarget[] = [{ kind: 'all' }, { kind: 'room', room: 'r' }, { kind: 'session', id: a.id }, { kind: 'user', user: 'u' }]
    // Eight messages, one per second, through four logs.
    for (let i = 0; i < 8; i++) await publish(targets[i % 4], i, T0 + i * 1000)
    const r1 = await read(a.id, 0, T0 + 8000, 2)
    t.same([r1.data, r1.missed], [[0, 1], 0])
    const r2 = await read(a.id, r1.cursor, T0 + 13_500)
    t.same(r2.data, [4, 5, 6, 7], '0 to 3 expired (0 and 1 acknowledged, 2 and 3 never delivered)')
    t.equal(r2.missed, 2)
    const lost = await read(a.id, r1.cursor, T0 + 15_500)
    t.same(lost.data, [6, 7], 'a resend later: 4 and 5 expired meanwhile, delivered so not missed')
    t.equal(lost.missed, 0)
  })

  t.test('overflow on a long unread stream counts every undelivered drop', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, { maxMailboxMessages: 10 })
    const a = await session(T0, { rooms: ['r'] })
    const n = 600
    for (let i = 0; i < n; i++) await publish(i % 2 === 0 ? { kind: 'session', id: a.id } : { kind: 'room', room: 'r' }, i, T0 + i)
    const r = await read(a.id, null, T0 + n)
    t.equal(r.missed, n - 10)
    t.same(r.data, Array.from({ length: 10 }, (_, i) => n - 10 + i))
    const st = await store.stats()
    t.same([st.delivered, st.dropped], [10, n - 10])
    t.ok(st.queued <= 20, `each log holds at most maxMailboxMessages (queued ${st.queued})`)
  })
}
