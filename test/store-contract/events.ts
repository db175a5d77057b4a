/**
 * The store contract: wake and poll events.
 * The rules the cases keep: index.ts; what they work with: setup.ts.
 */
import type { Test } from 'tap'
import { type Contract, sorted, wokenSince } from './setup.js'

export function eventCases (t: Test, { setup }: Contract): void {
  t.test('wake events: null for all, the recipients for a room or a session', async (t) => {
    const { rec, session, publish, fence, T0 } = await setup(t)
    const a = await session(T0, { rooms: ['r'] })
    const b = await session(T0, { rooms: ['r'] })
    const c = await session(T0)

    let mark = rec.events.length
    await publish({ kind: 'all' }, 'x', T0 + 1)
    await rec.waitFor('a wake for everybody', (evs) => evs.some((e) => e.type === 'wake' && e.sessions === null), mark)

    mark = rec.events.length
    await publish({ kind: 'room', room: 'r' }, 'x', T0 + 2)
    await rec.waitFor('a wake of a and b', () => {
      const w = wokenSince(rec, mark)
      return w.ids.includes(a.id) && w.ids.includes(b.id)
    })
    await fence(c.id, T0 + 2)
    t.same(wokenSince(rec, mark), { all: false, ids: sorted([a.id, b.id]) }, 'a room publish wakes its members only')

    mark = rec.events.length
    await publish({ kind: 'session', id: c.id }, 'x', T0 + 3)
    await rec.waitFor('a wake of c', () => wokenSince(rec, mark).ids.includes(c.id))
    await fence(a.id, T0 + 3)
    t.same(wokenSince(rec, mark), { all: false, ids: [c.id] }, 'a publish to one session wakes only it')

    mark = rec.events.length
    await publish({ kind: 'session', id: 'no-such-session' }, 'x', T0 + 4)
    await publish({ kind: 'room', room: 'nobody-here' }, 'x', T0 + 4)
    await fence(a.id, T0 + 4)
    t.same(wokenSince(rec, mark), { all: false, ids: [] }, 'no recipient: nobody woken')
  })

  t.test('beginPoll: increasing sequence, poll events, read returns pollSeq', async (t) => {
    const { store, rec, session, read, T0 } = await setup(t)
    const a = await session(T0)
    const b = await session(T0)
    const r0 = await read(a.id, null, T0)
    t.type(r0.pollSeq, 'number')

    const s1 = await store.beginPoll(a.id, 1000, T0 + 1)
    const s2 = await store.beginPoll(a.id, 1000, T0 + 2)
    const sb = await store.beginPoll(b.id, 1000, T0 + 2)
    t.type(s1, 'number')
    t.type(sb, 'number')
    t.ok((s1 as number) > r0.pollSeq, 'the first poll has a higher sequence than the initial one')
    t.ok((s2 as number) > (s1 as number), 'each poll a higher sequence')

    const polls = await rec.waitFor('two poll events of a', (evs) => {
      const p = evs.filter((e) => e.type === 'poll' && e.sessionId === a.id)
      return p.length >= 2 ? p : undefined
    })
    t.same(polls, [{ type: 'poll', sessionId: a.id, seq: s1 }, { type: 'poll', sessionId: a.id, seq: s2 }])
    await rec.waitFor('the poll event of b', (evs) => evs.some((e) => e.type === 'poll' && e.sessionId === b.id && e.seq === sb))

    t.equal((await read(a.id, null, T0 + 3)).pollSeq, s2, 'read returns the current poll sequence')
    await store.endPoll(a.id, s2 as number, T0 + 4)
    t.equal((await read(a.id, null, T0 + 5)).pollSeq, s2, 'endPoll does not change it')
    t.equal(await store.beginPoll('no-such-session', 1000, T0 + 6), null)
  })
}
