/** Store contract v2: rooms (join, leave, membership intervals) and member pages. */
import type { Test } from 'tap'
import type { MailboxStore, Member } from '../../lib/stores/store.js'
import { sorted, type Setup } from './helpers.js'

/** Every page of a member list, following `next` (at most 100 pages). */
async function allPages (store: MailboxStore, room: string | null, limit: number, now: number): Promise<{ pages: Member[][], ids: string[] }> {
  const pages: Member[][] = []
  let after: string | null = null
  for (let i = 0; i < 100; i++) {
    const page = await store.members(room, after, limit, now)
    pages.push(page.items)
    if (page.next === null) break
    after = page.next
  }
  return { pages, ids: pages.flat().map((m) => m.id) }
}

export function roomCases (t: Test, setup: Setup): void {
  t.test('join and leave results', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, { maxRoomsPerSession: 2 })
    const a = await session(T0, { rooms: ['r1'] })
    const b = await session(T0, { rooms: ['r2'] })
    t.same(await store.join(a.id, 'r1', T0), { result: 'already', size: 1 }, 'joined at creation')
    t.same(await store.join(a.id, 'r2', T0), { result: 'joined', size: 2 }, 'with the members after joining')
    t.same(await store.join(a.id, 'r2', T0), { result: 'already', size: 2 })
    t.same(await store.join(a.id, 'r3', T0), { result: 'too-many' }, 'maxRoomsPerSession counts the rooms given at creation')
    t.same(await store.join(a.id, 'r1', T0), { result: 'already', size: 1 }, 'already wins over too-many')
    t.same(await store.join('no-such-session', 'r1', T0), { result: 'no-session' })
    const auth = await store.authenticate(a.tokenHash, T0 + 1)
    t.same(sorted(auth.ok ? auth.session.rooms : []), ['r1', 'r2'])

    t.same(await store.leave(a.id, 'r2', T0 + 1), { left: true, size: 1 }, 'with the members left')
    t.same(await store.leave(a.id, 'r2', T0 + 1), { left: false, size: 1 }, 'not a member any more')
    t.same(await store.leave(a.id, 'never', T0 + 1), { left: false, size: 0 })
    t.equal((await store.leave('no-such-session', 'r1', T0 + 1)).left, false)
    t.same(await store.join(a.id, 'r3', T0 + 1), { result: 'joined', size: 1 }, 'leaving made room')
    const auth2 = await store.authenticate(a.tokenHash, T0 + 2)
    t.same(sorted(auth2.ok ? auth2.session.rooms : []), ['r1', 'r3'])
    t.same(await store.leave(b.id, 'r2', T0 + 2), { left: true, size: 0 }, 'the last member leaves')

    t.equal((await publish({ kind: 'room', room: 'r2' }, 'r2', T0 + 3)).recipients, 0, 'a left room reaches nobody')
    t.equal((await publish({ kind: 'room', room: 'r3' }, 'r3', T0 + 4)).recipients, 1)
    t.same((await read(a.id, 0, T0 + 5)).data, ['r3'], 'join and leave themselves put nothing in the mailbox')
  })

  t.test('a room publish reaches the members at the time of publishing', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t)
    const a = await session(T0, { rooms: ['r'] })
    const b = await session(T0)
    await publish({ kind: 'room', room: 'r' }, 'before', T0 + 1)
    t.equal((await store.join(b.id, 'r', T0 + 1)).result, 'joined')
    await publish({ kind: 'room', room: 'r' }, 'during', T0 + 2)
    t.equal((await store.leave(a.id, 'r', T0 + 2)).left, true)
    await publish({ kind: 'room', room: 'r' }, 'after', T0 + 3)
    t.same((await read(a.id, 0, T0 + 4)).data, ['before', 'during'])
    t.same((await read(b.id, 0, T0 + 4)).data, ['during', 'after'])
  })

  t.test('join and leave between two polls: exactly what was accepted while a member', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t)
    const a = await session(T0)
    const b = await session(T0, { rooms: ['r'] })
    const r0 = await read(a.id, null, T0)
    await publish({ kind: 'room', room: 'r' }, 'r-before', T0 + 1)
    await publish({ kind: 'all' }, 'all-1', T0 + 2)
    t.equal((await store.join(a.id, 'r', T0 + 3)).result, 'joined')
    await publish({ kind: 'room', room: 'r' }, 'r-during-1', T0 + 4)
    await publish({ kind: 'session', id: a.id }, 'to-a', T0 + 5)
    await publish({ kind: 'room', room: 'r' }, 'r-during-2', T0 + 6)
    t.equal((await store.leave(a.id, 'r', T0 + 7)).left, true)
    await publish({ kind: 'room', room: 'r' }, 'r-after', T0 + 8)
    await publish({ kind: 'all' }, 'all-2', T0 + 9)
    const r1 = await read(a.id, r0.cursor, T0 + 10)
    t.same(r1.data, ['all-1', 'r-during-1', 'to-a', 'r-during-2', 'all-2'], 'in acceptance order, the room only while a member')
    t.same(r1.rooms, [], 'and it is in no room now')
    const lost = await read(a.id, r0.cursor, T0 + 11)
    t.same(lost.data, r1.data, 'a lost response: the same again, the left room included')
    t.same((await read(a.id, r1.cursor, T0 + 12)).data, [])
    t.same((await read(b.id, 0, T0 + 12)).data, ['r-before', 'all-1', 'r-during-1', 'r-during-2', 'r-after', 'all-2'])
  })

  t.test('a message to a room accepted while a member joins: delivered to it exactly when counted', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t)
    const b = await session(T0, { rooms: ['r'] })
    let counted = 0
    for (let i = 0; i < 10; i++) {
      const a = await session(T0 + i)
      const [joined, sent] = await Promise.all([store.join(a.id, 'r', T0 + i), publish({ kind: 'room', room: 'r' }, i, T0 + i)])
      t.equal(joined.result, 'joined')
      const got = (await read(a.id, 0, T0 + i)).data
      t.ok(sent.recipients === 1 || sent.recipients === 2, `recipients ${sent.recipients}`)
      t.same(got, sent.recipients === 2 ? [i] : [], `round ${i}: the joiner has the message iff it was counted`)
      if (sent.recipients === 2) counted++
      await store.leave(a.id, 'r', T0 + i)
      await store.endSession(a.id)
    }
    t.equal((await read(b.id, 0, T0 + 20)).data.length, 10, 'the member has all ten')
    t.pass(`${counted} of 10 publishes counted the joiner`)
  })

  t.test('rejoining a room: each membership interval once, nothing from between', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t)
    const a = await session(T0, { rooms: ['r'] })
    await session(T0, { rooms: ['r'] })
    await publish({ kind: 'room', room: 'r' }, 1, T0 + 1)
    await store.leave(a.id, 'r', T0 + 2)
    await publish({ kind: 'room', room: 'r' }, 2, T0 + 3)
    t.equal((await store.join(a.id, 'r', T0 + 4)).result, 'joined', 'rejoined while 1 is still unread')
    await publish({ kind: 'room', room: 'r' }, 3, T0 + 5)
    const r1 = await read(a.id, 0, T0 + 6, 1)
    t.same(r1.data, [1])
    await store.leave(a.id, 'r', T0 + 7)
    await publish({ kind: 'room', room: 'r' }, 4, T0 + 8)
    await store.join(a.id, 'r', T0 + 9)
    await publish({ kind: 'room', room: 'r' }, 5, T0 + 10)
    const r2 = await read(a.id, 0, T0 + 11)
    t.same(r2.data, [1, 3, 5], 'three intervals, never 2 or 4, nothing twice')
    t.same((await read(a.id, r1.cursor, T0 + 12)).data, [3, 5])
    t.same((await read(a.id, r2.cursor, T0 + 13)).data, [])
  })

  t.test('leave with unread room messages: they stay, however busy the room gets', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, { maxMailboxMessages: 5 })
    const a = await session(T0, { rooms: ['r'] })
    const b = await session(T0, { rooms: ['r'] })
    for (let i = 1; i <= 3; i++) await publish({ kind: 'room', room: 'r' }, i, T0 + i)
    const r1 = await read(a.id, 0, T0 + 4, 1)
    t.same(r1.data, [1], '1 delivered, 2 and 3 not')
    t.same(await store.leave(a.id, 'r', T0 + 5), { left: true, size: 1 })
    for (let i = 4; i <= 30; i++) await publish({ kind: 'room', room: 'r' }, i, T0 + i)
    const r2 = await read(a.id, 0, T0 + 40)
    t.same([r2.data, r2.missed], [[1, 2, 3], 0], 'the room moved on by many times maxMailboxMessages; a keeps its own')
    t.same((await read(a.id, r2.cursor, T0 + 41)).data, [])
    const rb = await read(b.id, 0, T0 + 42)
    t.same([rb.data, rb.missed], [[26, 27, 28, 29, 30], 25], 'the member that stayed overflowed as usual')

    // Leaving with more unread than a mailbox holds: the oldest overflow, as they would have.
    const c = await session(T0 + 50, { rooms: ['q'] })
    for (let i = 1; i <= 8; i++) await publish({ kind: 'room', room: 'q' }, i, T0 + 50 + i)
    await store.leave(c.id, 'q', T0 + 60)
    await publish({ kind: 'session', id: c.id }, 'own', T0 + 61)
    const rc = await read(c.id, 0, T0 + 62)
    t.same([rc.data, rc.missed], [[5, 6, 7, 8, 'own'], 4], 'the mailbox limit holds across the left room and the rest')
  })

  t.test('members with and without a room', async (t) => {
    const { store, session, T0 } = await setup(t)
    t.same(await store.members(null, null, 100, T0), { items: [], next: null }, 'an empty store has no members')
    const a = await session(T0, { rooms: ['r'], profile: { name: 'A' } })
    const b = await session(T0 + 1, { rooms: ['r', 's'] })
    const c = await session(T0 + 2)
    await store.authenticate(b.tokenHash, T0 + 5)

    t.same((await allPages(store, null, 100, T0 + 5)).ids, [a.id, b.id, c.id], 'without a room: every live session, in creation order')
    const inR = await store.members('r', null, 100, T0 + 5)
    t.same(inR, {
      items: [{ id: a.id, profile: { name: 'A' }, lastSeen: T0 }, { id: b.id, profile: null, lastSeen: T0 + 5 }],
      next: null
    })
    t.same((await allPages(store, 's', 100, T0 + 5)).ids, [b.id])
    t.same(await store.members('nobody', null, 100, T0 + 5), { items: [], next: null })

    await store.leave(a.id, 'r', T0 + 6)
    t.same((await allPages(store, 'r', 100, T0 + 6)).ids, [b.id], 'leave takes it off the list')
    t.same((await allPages(store, null, 100, T0 + 6)).ids, [a.id, b.id, c.id])
  })

  t.test('member pages: join order, limit, after; expired members hidden; a rejoin goes last', async (t) => {
    const { store, session, T0 } = await setup(t, { sessionTtl: 10_000, maxSessions: 100 })
    const ids: string[] = []
    for (let i = 0; i < 12; i++) ids.push((await session(T0 + (i % 3 === 0 ? 0 : 5000), { rooms: i % 2 === 0 ? ['r'] : [] })).id)
    // Join order differs from creation order: the odd ones join later, in reverse.
    for (let i = 11; i >= 1; i -= 2) t.equal((await store.join(ids[i], 'r', T0 + 5000)).result, 'joined')
    const order = [0, 2, 4, 6, 8, 10, 11, 9, 7, 5, 3, 1].map((i) => ids[i])

    const p5 = await allPages(store, 'r', 5, T0 + 5000)
    t.same(p5.ids, order, 'pages of 5 follow the join order')
    t.same(p5.pages.slice(0, 2).map((p) => p.length), [5, 5], 'full pages until the last')
    t.ok(p5.pages.length <= 4 && p5.pages.every((p) => p.length <= 5))
    const first = await store.members('r', null, 5, T0 + 5000)
    t.type(first.next, 'string', 'more to come: a next cursor')
    const again = await store.members('r', first.next, 5, T0 + 5000)
    t.same(again.items.map((m) => m.id), order.slice(5, 10), 'after: the page that follows, whatever the ids')
    t.same((await store.members('r', first.next, 5, T0 + 5000)).items, again.items, 'a page cursor can be used again')
    const whole = await store.members('r', null, 100, T0 + 5000)
    t.same([whole.items.map((m) => m.id), whole.next], [order, null], 'one page when it fits')

    // Sessions created at T0 (i % 3 === 0) expire at T0 + 10 000; the others live until T0 + 15 000.
    const live = order.filter((id) => ids.indexOf(id) % 3 !== 0)
    t.same((await allPages(store, 'r', 3, T0 + 12_000)).ids, live, 'expired members are hidden, even before a sweep')
    t.same((await allPages(store, null, 4, T0 + 12_000)).ids, ids.filter((_, i) => i % 3 !== 0), 'from everyone too')

    await store.leave(ids[2], 'r', T0 + 12_000)
    await store.join(ids[2], 'r', T0 + 12_001)
    await store.leave(ids[11], 'r', T0 + 12_001)
    const after = live.filter((id) => id !== ids[2] && id !== ids[11]).concat(ids[2])
    t.same((await allPages(store, 'r', 2, T0 + 12_002)).ids, after, 'a leaver is gone; a rejoin is last')
  })
}
