/**
 * The store contract: session expiry: sweep, held polls.
 * The rules the cases keep: index.ts; what they work with: setup.ts.
 */
import type { Test } from 'tap'
import { type Contract, sorted } from './setup.js'

export function expiryCases (t: Test, { setup }: Contract): void {
  t.test('sweep expires idle sessions once', async (t) => {
    const { store, rec, session, publish, T0 } = await setup(t, { sessionTtl: 10_000 })
    const a = await session(T0, { rooms: ['r', 'q'], profile: { name: 'A' } })
    const b = await session(T0 + 5000, { rooms: ['r'] })
    await publish({ kind: 'session', id: a.id }, 'pending', T0 + 5000)

    t.same(await store.sweep(T0 + 9000), [], 'nobody idle for sessionTtl yet')
    const swept = await store.sweep(T0 + 11_000)
    t.equal(swept.length, 1)
    t.equal(swept[0]?.id, a.id)
    t.same(swept[0]?.profile, { name: 'A' })
    t.same(sorted(swept[0]?.rooms ?? []), ['q', 'r'], 'with its rooms, for the leave messages')
    await rec.waitFor('ended event of a', (evs) => evs.some((e) => e.type === 'ended' && e.sessionId === a.id))
    t.same(await store.sweep(T0 + 11_000), [], 'a second sweep returns nothing')
    t.same(await store.sweep(T0 + 12_000), [], 'nor a later one')

    t.equal(await store.authenticate(a.tokenHash, T0 + 12_000), null, 'its token stops working')
    t.equal(await store.read(a.id, null, 100, T0 + 12_000), null, 'its mailbox is gone')
    t.same((await store.members('r')).map((m) => m.id), [b.id], 'it left its rooms')
    t.same(await store.members('q'), [])
    t.same(await store.stats(), { sessions: 1, queued: 0, delivered: 0, dropped: 0 }, 'its mailbox is freed')

    const later = await store.sweep(T0 + 16_000)
    t.same(later.map((s) => s.id), [b.id], 'b expires on its own schedule')
    t.equal((await store.stats()).sessions, 0)
  })

  t.test('an expired session is refused before it is swept, and the sweep still reports it', async (t) => {
    const { store, session, T0 } = await setup(t, { sessionTtl: 10_000 })
    const a = await session(T0, { rooms: ['r'] })
    t.equal(await store.authenticate(a.tokenHash, T0 + 20_000), null, 'expired: refused even before any sweep')
    t.equal(await store.beginPoll(a.id, 1000, T0 + 20_000), null, 'and cannot hold a poll')
    t.equal(await store.authenticate(a.tokenHash, T0 + 20_001), null, 'the refusal did not revive it')
    const swept = await store.sweep(T0 + 20_002)
    t.same(swept.map((s) => ({ id: s.id, rooms: s.rooms })), [{ id: a.id, rooms: ['r'] }], 'the sweep announces it exactly once')
    t.same(await store.sweep(T0 + 20_003), [])
  })

  t.test('a held poll keeps the session alive; its idle time starts at endPoll', async (t) => {
    const { store, session, T0 } = await setup(t, { sessionTtl: 10_000 })
    const a = await session(T0)
    // Held for up to 100 s: within that, the session must not expire (beyond it, a store may
    // assume the instance holding it is gone).
    const seq = await store.beginPoll(a.id, 100_000, T0 + 1000)
    t.type(seq, 'number')
    t.same(await store.sweep(T0 + 30_000), [], 'not swept while the poll is held, well past sessionTtl')
    t.equal((await store.authenticate(a.tokenHash, T0 + 30_000))?.id, a.id, 'and still authenticates')
    t.same(await store.sweep(T0 + 60_000), [], 'an authentication during the hold does not restart expiry')

    await store.endPoll(a.id, seq as number, T0 + 60_000)
    t.same(await store.sweep(T0 + 65_000), [], 'idle for less than sessionTtl since the poll ended')
    t.equal((await store.authenticate(a.tokenHash, T0 + 65_000))?.id, a.id)
    t.same((await store.sweep(T0 + 76_000)).map((s) => s.id), [a.id], 'expired sessionTtl after the last activity')
  })

  t.test('an older poll ending does not end a newer hold', async (t) => {
    const { store, session, T0 } = await setup(t, { sessionTtl: 10_000 })
    const a = await session(T0)
    const s1 = await store.beginPoll(a.id, 100_000, T0 + 1)
    const s2 = await store.beginPoll(a.id, 100_000, T0 + 2)
    await store.endPoll(a.id, s1 as number, T0 + 3)
    t.same(await store.sweep(T0 + 50_000), [], 'the newer poll is still held')
    await store.endPoll(a.id, s2 as number, T0 + 50_000)
    t.same(await store.sweep(T0 + 55_000), [])
    t.same((await store.sweep(T0 + 61_000)).map((s) => s.id), [a.id])
  })

  t.test('ending a session with a held poll', async (t) => {
    const { store, session, T0 } = await setup(t, { sessionTtl: 10_000 })
    const a = await session(T0)
    const seq = await store.beginPoll(a.id, 25_000, T0 + 1)
    t.equal((await store.endSession(a.id))?.id, a.id)
    await store.endPoll(a.id, seq as number, T0 + 2)
    t.equal(await store.authenticate(a.tokenHash, T0 + 3), null, 'endPoll does not bring it back')
    t.same(await store.members(), [], 'nor into members()')
    t.same(await store.sweep(T0 + 100_000), [], 'and the sweep does not report it again')
    t.equal((await store.stats()).sessions, 0)
  })
}
