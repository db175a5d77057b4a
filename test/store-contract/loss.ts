/**
 * The store contract: losing messages: messageTtl and overflow, and how `missed` reports them.
 * The rules the cases keep: index.ts; what they work with: setup.ts.
 */
import type { Test } from 'tap'
import { type Contract } from './setup.js'

export function lossCases (t: Test, { setup }: Contract): void {
  t.test('messageTtl: an undelivered message expires, counted in missed exactly once', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, { messageTtl: 10_000 })
    const a = await session(T0)
    await publish({ kind: 'session', id: a.id }, 'old', T0)
    await publish({ kind: 'session', id: a.id }, 'new', T0 + 8000)

    const before = await store.read(a.id, null, 0, T0 + 9500)
    t.same(before !== null && before !== 'bad-cursor' ? before.missed : before, 0, 'nothing expired before messageTtl')

    const r = await read(a.id, 0, T0 + 12_000)
    t.same(r.data, ['new'], 'the expired message is gone, the younger one is there')
    t.equal(r.missed, 1, 'and counted as missed')
    const again = await read(a.id, 0, T0 + 12_001)
    t.same(again.data, ['new'])
    t.equal(again.missed, 0, 'counted once')

    const st = await store.stats()
    t.equal(st.dropped, 1, 'stats.dropped counts the expired undelivered message')
    t.equal(st.queued, 1, 'queued no longer counts it')
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
    t.ok(r2.cursor >= 0)
    t.equal((await store.stats()).dropped, 1)
    t.equal((await store.stats()).queued, 0)

    // The cursor stays usable after everything it pointed past expired.
    await publish({ kind: 'session', id: a.id }, 3, T0 + 20_001)
    const r3 = await read(a.id, r2.cursor, T0 + 20_002)
    t.same(r3.data, [3])
    t.equal(r3.missed, 0)
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

  t.test('overflow drops the oldest and counts the undelivered ones in missed', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, { maxMailboxMessages: 3 })
    const a = await session(T0)
    for (let i = 1; i <= 5; i++) await publish({ kind: 'session', id: a.id }, i, T0 + i)
    t.equal((await store.stats()).queued, 3, 'the mailbox holds at most maxMailboxMessages')
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

  t.test('missed is reported even when the read returns no messages', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, { maxMailboxMessages: 2 })
    const a = await session(T0)
    for (let i = 1; i <= 3; i++) await publish({ kind: 'session', id: a.id }, i, T0 + i)
    const r = await store.read(a.id, 0, 0, T0 + 5)
    t.same(r !== null && r !== 'bad-cursor' ? [r.messages, r.cursor, r.missed] : r, [[], 0, 1], 'limit 0: no messages, one missed')
    t.same((await read(a.id, 0, T0 + 6)).data, [2, 3], 'nothing was delivered by it')
  })
}
