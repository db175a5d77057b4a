/** Store contract v2: the counters of stats(). */
import type { Test } from 'tap'
import type { Setup } from './helpers.js'

export function statsCases (t: Test, setup: Setup): void {
  t.test('stats counters: sessions, queued, delivered, dropped', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, { maxMailboxMessages: 3 })
    t.same(await store.stats(), { sessions: 0, queued: 0, delivered: 0, dropped: 0 })
    const a = await session(T0)
    const b = await session(T0)
    t.equal((await store.stats()).sessions, 2)

    await publish({ kind: 'all' }, 1, T0 + 1)
    await publish({ kind: 'session', id: a.id }, 2, T0 + 2)
    t.same(await store.stats(), { sessions: 2, queued: 2, delivered: 0, dropped: 0 }, 'a broadcast is stored once, not once per mailbox')

    const r1 = await read(a.id, 0, T0 + 3)
    t.same(r1.data, [1, 2])
    t.same(await store.stats(), { sessions: 2, queued: 2, delivered: 2, dropped: 0 }, 'delivered, not yet acknowledged')
    await read(a.id, 0, T0 + 4)
    t.equal((await store.stats()).delivered, 2, 'a re-delivery is not counted again')
    await read(a.id, r1.cursor, T0 + 5)
    t.same(await store.stats(), { sessions: 2, queued: 1, delivered: 2, dropped: 0 },
      'an acknowledged inbox message is freed; the broadcast stays for b (and until messageTtl)')

    for (let i = 3; i <= 6; i++) await publish({ kind: 'session', id: b.id }, i, T0 + i)
    const st = await store.stats()
    t.same([st.sessions, st.queued, st.delivered], [2, 4, 2], 'b\'s inbox holds at most maxMailboxMessages')
    t.ok(st.dropped <= 2, 'drops are counted at the latest when a read finds them')
    const rb = await read(b.id, null, T0 + 10)
    t.same([rb.data, rb.missed], [[4, 5, 6], 2])
    t.same(await store.stats(), { sessions: 2, queued: 4, delivered: 5, dropped: 2 }, 'overflow of b: 1 and 3 dropped undelivered')

    await store.endSession(b.id)
    t.same(await store.stats(), { sessions: 1, queued: 1, delivered: 5, dropped: 2 }, 'ending a session frees its inbox')
  })
}
