/** Store contract v2: session expiry (sweep, holds) and messages freed by age. */
import type { Test } from 'tap'
import { ALL, sorted, type Setup } from './helpers.js'

export function expiryCases (t: Test, setup: Setup): void {
  t.test('sweep expires idle sessions once', async (t) => {
    const { store, rec, session, publish, T0 } = await setup(t, { sessionTtl: 10_000 })
    const a = await session(T0, { rooms: ['r', 'q'], profile: { name: 'A' }, user: 'ann' })
    const b = await session(T0 + 5000, { rooms: ['r'] })
    await publish({ kind: 'session', id: a.id }, 'pending', T0 + 5000)

    t.same(await store.sweep(T0 + 9000, 100), [], 'nobody idle for sessionTtl yet')
    const swept = await store.sweep(T0 + 11_000, 100)
    t.equal(swept.length, 1)
    t.equal(swept[0]?.id, a.id)
    t.same(swept[0]?.profile, { name: 'A' })
    t.equal(swept[0]?.user, 'ann')
    t.same(sorted(swept[0]?.rooms ?? []), ['q', 'r'], 'with its rooms, for the leave messages')
    const sizeOf = (room: string): number | undefined => swept[0]?.sizes[swept[0].rooms.indexOf(room)]
    t.same([sizeOf('q'), sizeOf('r')], [0, 1], 'and the members left in each')
    await rec.waitFor('ended event of a', (evs) => evs.some((e) => e.type === 'ended' && e.sessionId === a.id))
    t.same(await store.sweep(T0 + 11_000, 100), [], 'a second sweep returns nothing')
    t.same(await store.sweep(T0 + 12_000, 100), [], 'nor a later one')

    t.same(await store.authenticate(a.tokenHash, T0 + 12_000), { ok: false, reason: 'unknown' }, 'its token stops working')
    t.equal(await store.lookup(a.id, T0 + 12_000), null)
    t.same((await store.members('r', null, 100, T0 + 12_000)).items.map((m) => m.id), [b.id], 'it left its rooms')
    t.same((await store.members('q', null, 100, T0 + 12_000)).items, [])
    t.same(await store.userSessions('ann', T0 + 12_000), [])
    t.same(await store.stats(), { sessions: 1, queued: 0, delivered: 0, dropped: 0 }, 'its inbox is freed')

    const later = await store.sweep(T0 + 16_000, 100)
    t.same(later.map((s) => s.id), [b.id], 'b expires on its own schedule')
    t.equal((await store.stats()).sessions, 0)
  })

  t.test('an expired session is refused before it is swept, and the sweep still reports it', async (t) => {
    const { store, session, T0 } = await setup(t, { sessionTtl: 10_000 })
    const a = await session(T0, { rooms: ['r'] })
    t.same(await store.authenticate(a.tokenHash, T0 + 20_000), { ok: false, reason: 'unknown' }, 'expired: refused even before any sweep')
    t.same(await store.poll(a.tokenHash, null, 1000, ALL, T0 + 20_000), { ok: false, reason: 'unknown' }, 'and cannot hold a poll')
    t.same(await store.authenticate(a.tokenHash, T0 + 20_001), { ok: false, reason: 'unknown' }, 'the refusal did not revive it')
    const swept = await store.sweep(T0 + 20_002, 100)
    t.same(swept.map((s) => ({ id: s.id, rooms: s.rooms, sizes: s.sizes })), [{ id: a.id, rooms: ['r'], sizes: [0] }],
      'the sweep announces it exactly once')
    t.same(await store.sweep(T0 + 20_003, 100), [])
  })

  t.test('a held poll keeps the session alive; its idle time starts at endPoll', async (t) => {
    const { store, session, poll, T0 } = await setup(t, { sessionTtl: 10_000 })
    const a = await session(T0)
    // Held for up to 100 s: within that, the session must not expire (beyond it, a store may
    // assume the instance holding it is gone).
    const p = await poll(a, null, T0 + 1000, 100_000)
    t.ok(p.seq > 0)
    t.same(await store.sweep(T0 + 30_000, 100), [], 'not swept while the poll is held, well past sessionTtl')
    const auth = await store.authenticate(a.tokenHash, T0 + 30_000)
    t.equal(auth.ok && auth.session.id, a.id, 'and still authenticates')
    t.same(await store.sweep(T0 + 60_000, 100), [], 'an authentication during the hold does not restart expiry')

    await store.endPoll(a.id, p.seq, T0 + 60_000)
    t.same(await store.sweep(T0 + 65_000, 100), [], 'idle for less than sessionTtl since the poll ended')
    t.equal((await store.authenticate(a.tokenHash, T0 + 65_000)).ok, true)
    t.same((await store.sweep(T0 + 76_000, 100)).map((s) => s.id), [a.id], 'expired sessionTtl after the last activity')
  })

  t.test('an older poll ending does not end a newer hold', async (t) => {
    const { store, session, poll, T0 } = await setup(t, { sessionTtl: 10_000 })
    const a = await session(T0)
    const s1 = await poll(a, null, T0 + 1, 100_000)
    const s2 = await poll(a, null, T0 + 2, 100_000)
    await store.endPoll(a.id, s1.seq, T0 + 3)
    t.same(await store.sweep(T0 + 50_000, 100), [], 'the newer poll is still held')
    await store.endPoll(a.id, s2.seq, T0 + 50_000)
    t.same(await store.sweep(T0 + 55_000, 100), [])
    t.same((await store.sweep(T0 + 61_000, 100)).map((s) => s.id), [a.id])
  })

  t.test('ending a session with a held poll', async (t) => {
    const { store, session, poll, T0 } = await setup(t, { sessionTtl: 10_000 })
    const a = await session(T0)
    const p = await poll(a, null, T0 + 1, 25_000)
    t.equal((await store.endSession(a.id))?.id, a.id)
    await store.endPoll(a.id, p.seq, T0 + 2)
    t.equal(await store.lookup(a.id, T0 + 2), null, 'endPoll does not bring it back')
    t.same(await store.sweep(T0 + 100_000, 100), [], 'and the sweep does not report it again')
    t.equal((await store.stats()).sessions, 0)
  })

  t.test('sweep removes at most limit sessions per call, each once', async (t) => {
    const { store, rec, session, T0 } = await setup(t, { sessionTtl: 10_000 })
    const ids = new Set<string>()
    for (let i = 0; i < 25; i++) ids.add((await session(T0 + i, { rooms: ['r'] })).id)
    const keep = await session(T0 + 9000, { rooms: ['r'] })
    const batches: number[] = []
    const seen = new Set<string>()
    for (let i = 0; i < 10; i++) {
      const ended = await store.sweep(T0 + 15_000, 10)
      batches.push(ended.length)
      for (const e of ended) {
        t.notOk(seen.has(e.id), 'not reported twice')
        seen.add(e.id)
      }
      if (ended.length < 10) break
    }
    t.same(batches, [10, 10, 5], 'bounded batches, until one returns fewer than limit')
    t.same(sorted(seen), sorted(ids), 'exactly the expired ones')
    await rec.waitFor('25 ended events', (evs) => evs.filter((e) => e.type === 'ended').length >= 25 ? true : undefined)
    t.same((await store.members('r', null, 100, T0 + 15_000)).items.map((m) => m.id), [keep.id])
    t.equal((await store.stats()).sessions, 1)
  })

  t.test('memory follows messageTtl: a sweep frees expired messages even if nobody reads them', async (t) => {
    const { store, session, publish, T0 } = await setup(t, { messageTtl: 10_000, sessionTtl: 1_000_000 })
    await session(T0, { rooms: ['r'], user: 'u' })
    const b = await session(T0, { rooms: ['r'] })
    for (let i = 0; i < 5; i++) {
      await publish({ kind: 'all' }, i, T0 + i)
      await publish({ kind: 'room', room: 'r' }, i, T0 + i)
      await publish({ kind: 'session', id: b.id }, i, T0 + i)
      await publish({ kind: 'user', user: 'u' }, i, T0 + i)
    }
    t.equal((await store.stats()).queued, 20, 'each message stored once, whatever its audience')
    await store.sweep(T0 + 5000, 100)
    t.equal((await store.stats()).queued, 20, 'nothing expired yet')
    await publish({ kind: 'all' }, 'late', T0 + 8000)
    await store.sweep(T0 + 15_000, 100)
    t.equal((await store.stats()).queued, 1, 'a sweep past messageTtl frees the expired ones, unread')
    await store.sweep(T0 + 20_000, 100)
    t.equal((await store.stats()).queued, 0)
    t.equal((await store.stats()).sessions, 2, 'the sessions live on')
  })
}
