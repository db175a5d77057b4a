/** Store contract v2: events (wake by log, poll, ended) and holds. */
import type { Test } from 'tap'
import type { LogTarget, StoreEvent } from '../../lib/stores/store.js'
import { ALL, type Setup } from './helpers.js'

export function eventCases (t: Test, setup: Setup): void {
  t.test('wake events name the log, one per publish, never recipients', async (t) => {
    const { rec, session, publish, fence, T0 } = await setup(t)
    const f = await session(T0)
    const a = await session(T0, { rooms: ['r'], user: 'u' })
    await session(T0, { rooms: ['r'] })
    const c = await session(T0)
    const cases: Array<[LogTarget, string]> = [
      [{ kind: 'all' }, 'all'],
      [{ kind: 'room', room: 'r' }, 'r:r'],
      [{ kind: 'session', id: c.id }, `s:${c.id}`],
      [{ kind: 'user', user: 'u' }, 'u:u']
    ]
    let now = T0
    for (const [target, log] of cases) {
      const mark = rec.events.length
      await publish(target, 'x', ++now)
      await rec.waitFor(`a wake of ${log}`, (evs) => evs.some((e) => e.type === 'wake' && e.log === log), mark)
      await fence(f, now)
      t.same(rec.events.slice(mark).filter((e) => e.type === 'wake'), [{ type: 'wake', log }], `${target.kind}: exactly one wake, naming ${log}`)
    }
    t.equal(a.user, 'u')

    const mark = rec.events.length
    await publish({ kind: 'session', id: 'no-such-session' }, 'x', ++now)
    await publish({ kind: 'room', room: 'nobody-here' }, 'x', now)
    await publish({ kind: 'user', user: 'nobody' }, 'x', now)
    await fence(f, now)
    t.same(rec.wakes(mark), [], 'no recipient: nobody woken')
  })

  t.test('join and leave wake the session\'s own log; no-ops wake nobody', async (t) => {
    const { store, rec, session, fence, T0 } = await setup(t)
    const f = await session(T0)
    const a = await session(T0)
    let mark = rec.events.length
    t.equal((await store.join(a.id, 'r', T0 + 1)).result, 'joined')
    await rec.waitFor('a wake of a', (evs) => evs.some((e) => e.type === 'wake' && e.log === `s:${a.id}`), mark)
    await fence(f, T0 + 1)
    t.same(rec.wakes(mark), [`s:${a.id}`], 'a join wakes s:<id> (the instance holding its poll re-reads it)')

    mark = rec.events.length
    t.equal((await store.join(a.id, 'r', T0 + 2)).result, 'already')
    t.equal((await store.leave(a.id, 'q', T0 + 2)).left, false)
    await fence(f, T0 + 2)
    t.same(rec.wakes(mark), [], 'joining a room one is in, leaving one one is not in: nothing')

    mark = rec.events.length
    t.equal((await store.leave(a.id, 'r', T0 + 3)).left, true)
    await rec.waitFor('a wake of a', (evs) => evs.some((e) => e.type === 'wake' && e.log === `s:${a.id}`), mark)
    await fence(f, T0 + 3)
    t.same(rec.wakes(mark), [`s:${a.id}`], 'a leave wakes s:<id>')
  })

  t.test('poll: a hold begins when there is nothing to answer; increasing sequence, poll events, pollSeq', async (t) => {
    const { store, rec, session, read, poll, T0 } = await setup(t)
    const a = await session(T0)
    const b = await session(T0)
    const r0 = await read(a.id, null, T0)
    t.type(r0.pollSeq, 'number')

    const p1 = await poll(a, null, T0 + 1, 1000)
    const p2 = await poll(a, null, T0 + 2, 1000)
    const pb = await poll(b, null, T0 + 2, 1000)
    t.ok(p1.seq > r0.pollSeq, 'the first hold has a higher sequence than the initial one')
    t.ok(p2.seq > p1.seq, 'each hold a higher sequence')
    t.ok(pb.seq > 0)
    t.equal(p2.read.pollSeq, p2.seq, 'the read in the poll returns the new sequence')
    t.same([p1.session.id, p1.read.messages, p1.read.missed], [a.id, [], 0])

    const polls = await rec.waitFor('two poll events of a', (evs) => {
      const p = evs.filter((e) => e.type === 'poll' && e.sessionId === a.id)
      return p.length >= 2 ? p : undefined
    })
    t.same(polls, [{ type: 'poll', sessionId: a.id, seq: p1.seq }, { type: 'poll', sessionId: a.id, seq: p2.seq }])
    await rec.waitFor('the poll event of b', (evs) => evs.some((e) => e.type === 'poll' && e.sessionId === b.id && e.seq === pb.seq))

    t.equal((await read(a.id, null, T0 + 3)).pollSeq, p2.seq, 'read returns the current poll sequence')
    await store.endPoll(a.id, p2.seq, T0 + 4)
    t.equal((await read(a.id, null, T0 + 5)).pollSeq, p2.seq, 'endPoll does not change it')
    t.same(await store.poll('no-such-token-hash', null, 1000, ALL, T0 + 6), { ok: false, reason: 'unknown' })
  })

  t.test('poll answers at once, with no hold and no poll event, when there is something to answer', async (t) => {
    const { store, rec, session, publish, poll, fence, T0 } = await setup(t, { maxMailboxMessages: 2 })
    const f = await session(T0)
    const a = await session(T0)
    const mark = rec.events.length
    await publish({ kind: 'session', id: a.id }, 'x', T0 + 1)
    const p1 = await poll(a, null, T0 + 2, 25_000)
    t.same([p1.data, p1.seq], [['x'], 0], 'messages: answered, seq 0')
    const p2 = await poll(a, p1.read.cursor, T0 + 3, 0)
    t.same([p2.data, p2.seq], [[], 0], 'holdMs 0: answered empty, not held')
    for (let i = 0; i < 3; i++) await publish({ kind: 'session', id: a.id }, i, T0 + 4)
    const p3 = await poll(a, p1.read.cursor, T0 + 5, 25_000)
    t.same([p3.data, p3.read.missed, p3.seq], [[1, 2], 1, 0], 'messages and missed: answered')
    const p4 = await poll(a, p3.read.cursor, T0 + 6, 25_000, 0)
    t.equal(p4.seq, 0, 'limit 0: never held')
    const b = await session(T0)
    await publish({ kind: 'session', id: b.id }, 'old', T0)
    const pb = await poll(b, null, T0 + 40_000, 25_000)
    t.same([pb.data, pb.read.missed, pb.seq], [[], 1, 0], 'missed alone (it expired): answered')
    await fence(f, T0 + 40_001)
    const polls = rec.events.slice(mark).filter((e: StoreEvent) => e.type === 'poll' && e.sessionId !== f.id)
    t.same(polls, [], 'no poll event for polls that were answered at once')
    const held = await store.poll(a.tokenHash, p3.read.cursor, 25_000, ALL, T0 + 40_002)
    t.ok(held.ok && held.seq > 0 && held.read.messages.length === 0, 'nothing left: this one is held')
  })

  t.test('read with the hold\'s seq ends the hold when it answers, not otherwise', async (t) => {
    const { store, session, publish, poll, T0 } = await setup(t, { sessionTtl: 10_000 })
    const a = await session(T0)
    const p = await poll(a, null, T0, 100_000)
    t.ok(p.seq > 0, 'held')
    t.same(await store.sweep(T0 + 30_000, 100), [], 'not swept while held')
    const empty = await store.read(a.id, p.read.cursor, ALL, T0 + 30_000, p.seq)
    t.same(empty !== null && empty !== 'bad-cursor' ? empty.messages : empty, [], 'a wake-up with nothing to answer')
    t.same(await store.sweep(T0 + 45_000, 100), [], 'the hold goes on')
    await publish({ kind: 'session', id: a.id }, 'x', T0 + 50_000)
    const r = await store.read(a.id, p.read.cursor, ALL, T0 + 50_000, p.seq)
    t.equal(r !== null && r !== 'bad-cursor' ? r.messages.length : r, 1, 'answered')
    t.same(await store.sweep(T0 + 55_000, 100), [], 'idle since the answer, for less than sessionTtl')
    t.same((await store.sweep(T0 + 61_000, 100)).map((s) => s.id), [a.id], 'the answering read ended the hold at its time')

    const b = await session(T0 + 100_000)
    const b1 = await poll(b, null, T0 + 100_001, 100_000)
    const b2 = await poll(b, null, T0 + 100_002, 100_000)
    await publish({ kind: 'session', id: b.id }, 'y', T0 + 100_003)
    const rb = await store.read(b.id, b1.read.cursor, ALL, T0 + 100_004, b1.seq)
    t.equal(rb !== null && rb !== 'bad-cursor' ? rb.messages.length : rb, 1)
    t.same(await store.sweep(T0 + 150_000, 100), [], 'an older hold answering does not end the newer one')
    await store.endPoll(b.id, b2.seq, T0 + 150_000)
    t.same((await store.sweep(T0 + 161_000, 100)).map((s) => s.id), [b.id])
  })
}
