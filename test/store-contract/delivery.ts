/**
 * The store contract: publish to all, a room, a session; read after a cursor, lost responses, cursor null, bad-cursor, order, limit.
 * The rules the cases keep: index.ts; what they work with: setup.ts.
 */
import type { Test } from 'tap'
import { type Contract } from './setup.js'

export function deliveryCases (t: Test, { setup }: Contract): void {
  t.test('publish to all, a room, a session: recipients and delivery', async (t) => {
    const { session, publish, read, T0 } = await setup(t)
    t.equal((await publish({ kind: 'all' }, 'nobody', T0)).recipients, 0, 'no sessions: 0')
    const a = await session(T0, { rooms: ['r'] })
    const b = await session(T0, { rooms: ['r'] })
    const c = await session(T0)

    t.equal((await publish({ kind: 'all' }, 'all', T0 + 1)).recipients, 3)
    t.equal((await publish({ kind: 'room', room: 'r' }, 'room', T0 + 2)).recipients, 2)
    t.equal((await publish({ kind: 'session', id: c.id }, 'to-c', T0 + 3)).recipients, 1)
    t.equal((await publish({ kind: 'session', id: 'no-such-session' }, 'lost', T0 + 4)).recipients, 0, 'unknown session: 0')
    t.equal((await publish({ kind: 'room', room: 'empty' }, 'lost', T0 + 5)).recipients, 0, 'empty room: 0')

    t.same((await read(a.id, 0, T0 + 6)).data, ['all', 'room'])
    t.same((await read(b.id, 0, T0 + 6)).data, ['all', 'room'])
    t.same((await read(c.id, 0, T0 + 6)).data, ['all', 'to-c'])
  })

  t.test('the stored JSON is returned as published', async (t) => {
    const { store, session, T0 } = await setup(t)
    const a = await session(T0)
    const json = JSON.stringify({ id: 'm-1', type: 'message', from: null, room: null, to: a.id, data: { ü: '€ \u2028 "q"', n: [1, 2] }, ts: T0 })
    t.equal(await store.publish({ id: 'm-1', ts: T0, json, target: { kind: 'session', id: a.id } }, T0), 1)
    const r = await store.read(a.id, 0, 10, T0 + 1)
    t.same(r !== null && r !== 'bad-cursor' ? r.messages : r, [json], 'byte-for-byte the same string')
  })

  t.test('read after the cursor; an old cursor gets the same messages again; a new one acknowledges', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t)
    const a = await session(T0)
    const first = await read(a.id, 0, T0)
    t.same(first.messages, [], 'nothing yet')
    t.equal(first.cursor, 0, 'a fresh mailbox answers cursor 0 with cursor 0')
    t.equal(first.missed, 0)

    await publish({ kind: 'session', id: a.id }, 1, T0 + 1)
    await publish({ kind: 'session', id: a.id }, 2, T0 + 2)
    const r1 = await read(a.id, 0, T0 + 3)
    t.same(r1.data, [1, 2])
    t.ok(r1.cursor > 0, 'the cursor moved')

    const lost = await read(a.id, 0, T0 + 4)
    t.same(lost.data, [1, 2], 'the response was lost: polling with the old cursor returns the same messages')
    t.equal(lost.cursor, r1.cursor, 'and the same cursor')

    await publish({ kind: 'session', id: a.id }, 3, T0 + 5)
    const r2 = await read(a.id, r1.cursor, T0 + 6)
    t.same(r2.data, [3], 'the new cursor acknowledged 1 and 2: no repeats')
    t.ok(r2.cursor > r1.cursor)

    const again = await read(a.id, r1.cursor, T0 + 7)
    t.same(again.data, [3], 'that response lost too: the same cursor gets 3 again, still not 1 and 2')
    t.equal(again.cursor, r2.cursor)

    const r3 = await read(a.id, r2.cursor, T0 + 8)
    t.same(r3.messages, [], 'nothing after the latest cursor')
    t.equal(r3.cursor, r2.cursor, 'an empty answer keeps the request cursor')
    t.equal((await store.stats()).queued, 0, 'everything acknowledged is freed')
  })

  t.test('cursor null reads after the last delivered message', async (t) => {
    const { session, publish, read, T0 } = await setup(t)
    const a = await session(T0)
    await publish({ kind: 'session', id: a.id }, 1, T0 + 1)
    await publish({ kind: 'session', id: a.id }, 2, T0 + 2)
    const r1 = await read(a.id, null, T0 + 3)
    t.same(r1.data, [1, 2], 'nothing delivered yet: null gets everything queued')

    const r2 = await read(a.id, null, T0 + 4)
    t.same(r2.messages, [], 'null now means after 1 and 2 (at-most-once)')
    t.equal(r2.cursor, r1.cursor)

    await publish({ kind: 'session', id: a.id }, 3, T0 + 5)
    const r3 = await read(a.id, null, T0 + 6)
    t.same(r3.data, [3])
    const r4 = await read(a.id, r1.cursor, T0 + 7)
    t.same(r4.data, [3], 'null delivered 3 without acknowledging it; the explicit cursor still gets it')
  })

  t.test('bad-cursor when the cursor is ahead of anything delivered; null for unknown sessions', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t)
    const a = await session(T0)
    t.equal(await store.read(a.id, 1, 100, T0), 'bad-cursor', 'a fresh session has delivered nothing')
    await publish({ kind: 'session', id: a.id }, 1, T0 + 1)
    await publish({ kind: 'session', id: a.id }, 2, T0 + 2)
    t.equal(await store.read(a.id, 1, 100, T0 + 3), 'bad-cursor', 'queued but undelivered messages do not make a cursor valid')
    const r = await read(a.id, 0, T0 + 4, 1)
    t.same(r.data, [1])
    t.equal(await store.read(a.id, r.cursor + 1, 100, T0 + 5), 'bad-cursor', 'one past the delivered one')
    t.same((await read(a.id, r.cursor, T0 + 6)).data, [2], 'the issued cursor is fine, and the store state is intact')
    t.equal(await store.read('no-such-session', 0, 100, T0 + 7), null)
    t.equal(await store.read('no-such-session', null, 100, T0 + 7), null)
  })

  t.test('messages arrive in publish order in every mailbox', async (t) => {
    const { session, publish, read, T0 } = await setup(t, { maxMailboxMessages: 100 })
    const a = await session(T0, { rooms: ['r'] })
    const b = await session(T0, { rooms: ['r'] })
    const expectA: number[] = []
    const expectB: number[] = []
    for (let i = 0; i < 40; i++) {
      const kind = i % 4
      if (kind === 0) {
        await publish({ kind: 'all' }, i, T0 + i)
        expectA.push(i)
        expectB.push(i)
      } else if (kind === 1) {
        await publish({ kind: 'room', room: 'r' }, i, T0 + i)
        expectA.push(i)
        expectB.push(i)
      } else if (kind === 2) {
        await publish({ kind: 'session', id: a.id }, i, T0 + i)
        expectA.push(i)
      } else {
        await publish({ kind: 'session', id: b.id }, i, T0 + i)
        expectB.push(i)
      }
    }
    t.same((await read(a.id, 0, T0 + 100)).data, expectA)
    t.same((await read(b.id, 0, T0 + 100)).data, expectB)
  })

  t.test('limit: at most limit messages, the rest on the next read', async (t) => {
    const { session, publish, read, T0 } = await setup(t)
    const a = await session(T0)
    for (let i = 1; i <= 5; i++) await publish({ kind: 'session', id: a.id }, i, T0 + i)
    const r1 = await read(a.id, 0, T0 + 10, 2)
    t.same(r1.data, [1, 2])
    const r2 = await read(a.id, r1.cursor, T0 + 11, 2)
    t.same(r2.data, [3, 4])
    const r3 = await read(a.id, r2.cursor, T0 + 12, 2)
    t.same(r3.data, [5])
    const r4 = await read(a.id, r3.cursor, T0 + 13, 2)
    t.same(r4.messages, [])

    const b = await session(T0 + 20)
    for (let i = 1; i <= 3; i++) await publish({ kind: 'session', id: b.id }, i, T0 + 20 + i)
    t.same((await read(b.id, null, T0 + 30, 2)).data, [1, 2])
    t.same((await read(b.id, null, T0 + 31, 2)).data, [3], 'with cursor null too: only the undelivered rest')
  })
}
