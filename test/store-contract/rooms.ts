/**
 * The store contract: join, leave, members.
 * The rules the cases keep: index.ts; what they work with: setup.ts.
 */
import type { Test } from 'tap'
import { type Contract, sorted } from './setup.js'

export function roomCases (t: Test, { setup }: Contract): void {
  t.test('join and leave results', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, { maxRoomsPerSession: 2 })
    const a = await session(T0, { rooms: ['r1'] })
    t.equal(await store.join(a.id, 'r1'), 'already', 'joined at creation')
    t.equal(await store.join(a.id, 'r2'), 'joined')
    t.equal(await store.join(a.id, 'r2'), 'already')
    t.equal(await store.join(a.id, 'r3'), 'too-many', 'maxRoomsPerSession counts the rooms given at creation')
    t.equal(await store.join(a.id, 'r1'), 'already', 'already wins over too-many')
    t.equal(await store.join('no-such-session', 'r1'), 'no-session')
    t.same(sorted((await store.authenticate(a.tokenHash, T0 + 1))?.rooms ?? []), ['r1', 'r2'])

    t.equal(await store.leave(a.id, 'r2'), true)
    t.equal(await store.leave(a.id, 'r2'), false, 'not a member any more')
    t.equal(await store.leave(a.id, 'never'), false)
    t.equal(await store.leave('no-such-session', 'r1'), false)
    t.equal(await store.join(a.id, 'r3'), 'joined', 'leaving made room')
    t.same(sorted((await store.authenticate(a.tokenHash, T0 + 2))?.rooms ?? []), ['r1', 'r3'])

    t.equal((await publish({ kind: 'room', room: 'r2' }, 'r2', T0 + 3)).recipients, 0, 'a left room reaches nobody')
    t.equal((await publish({ kind: 'room', room: 'r3' }, 'r3', T0 + 4)).recipients, 1)
    t.same((await read(a.id, 0, T0 + 5)).data, ['r3'], 'join and leave themselves put nothing in the mailbox')
  })

  t.test('a room publish reaches the members at the time of publishing', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t)
    const a = await session(T0, { rooms: ['r'] })
    const b = await session(T0)
    await publish({ kind: 'room', room: 'r' }, 'before', T0 + 1)
    t.equal(await store.join(b.id, 'r'), 'joined')
    await publish({ kind: 'room', room: 'r' }, 'during', T0 + 2)
    t.equal(await store.leave(a.id, 'r'), true)
    await publish({ kind: 'room', room: 'r' }, 'after', T0 + 3)
    t.same((await read(a.id, 0, T0 + 4)).data, ['before', 'during'])
    t.same((await read(b.id, 0, T0 + 4)).data, ['during', 'after'])
  })

  t.test('members with and without a room', async (t) => {
    const { store, session, T0 } = await setup(t)
    t.same(await store.members(), [], 'an empty store has no members')
    const a = await session(T0, { rooms: ['r'], profile: { name: 'A' } })
    const b = await session(T0 + 1, { rooms: ['r', 's'] })
    const c = await session(T0 + 2)
    await store.authenticate(b.tokenHash, T0 + 5)

    const byId = (ms: Array<{ id: string }>): string[] => sorted(ms.map((m) => m.id))
    t.same(byId(await store.members()), sorted([a.id, b.id, c.id]), 'without a room: every live session')
    const inR = await store.members('r')
    t.same(byId(inR), sorted([a.id, b.id]))
    t.same(inR.find((m) => m.id === a.id), { id: a.id, profile: { name: 'A' }, lastSeen: T0 })
    t.same(inR.find((m) => m.id === b.id), { id: b.id, profile: null, lastSeen: T0 + 5 })
    t.same(byId(await store.members('s')), [b.id])
    t.same(await store.members('nobody'), [])

    await store.leave(a.id, 'r')
    t.same(byId(await store.members('r')), [b.id], 'leave takes it off the list')
    t.same(byId(await store.members()), sorted([a.id, b.id, c.id]))
  })
}
