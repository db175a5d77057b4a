/** Store contract v2: sessions (create, authenticate, lookup, end) and users behind sessions. */
import type { Test } from 'tap'
import { ALL, hash, sorted, unique, type Setup } from './helpers.js'

export function sessionCases (t: Test, setup: Setup): void {
  t.test('createSession, authenticate, unknown token', async (t) => {
    const { store, session, read, T0 } = await setup(t)
    const profile = { name: 'Ada', n: 1 }
    const context = { role: 'admin', tags: ['a', 'b'], n: 2 }
    const a = await session(T0, { rooms: ['lobby', 'dev'], profile, user: 'ada', context })

    const auth = await store.authenticate(a.tokenHash, T0 + 10)
    t.equal(auth.ok, true, 'the token hash authenticates')
    const info = auth.ok ? auth.session : null
    t.equal(info?.id, a.id)
    t.same(info?.profile, profile, 'profile is kept')
    t.equal(info?.user, 'ada', 'user is kept')
    t.same(info?.context, context, 'context is kept')
    t.same(sorted(info?.rooms ?? []), ['dev', 'lobby'], 'rooms given at creation are joined')
    t.equal(info?.lastSeen, T0 + 10, 'lastSeen is the authentication time')

    const unknown = { ok: false, reason: 'unknown' }
    t.same(await store.authenticate(hash('not a token'), T0 + 20), unknown, 'an unknown token hash is refused')
    t.same(await store.authenticate(a.token, T0 + 20), unknown, 'the raw token is not a credential, only its hash')
    t.same(await store.authenticate(a.id, T0 + 20), unknown, 'the id is not a credential')

    const b = await session(T0 + 30)
    const authB = await store.authenticate(b.tokenHash, T0 + 40)
    const infoB = authB.ok ? authB.session : null
    t.equal(infoB?.id, b.id, 'each token finds its own session')
    t.same(infoB?.profile, null, 'a session without profile has null')
    t.equal(infoB?.user, null, 'an anonymous session has user null')
    t.equal(infoB?.context, null, 'and context null')
    t.same(infoB?.rooms, [], 'a session without rooms has none')

    const r = await read(a.id, null, T0 + 50)
    t.same(r.messages, [], 'creating a session with rooms publishes nothing by itself')
    t.equal(r.missed, 0)
    t.same(sorted(r.rooms), ['dev', 'lobby'], 'read returns the rooms')
    t.equal(r.user, 'ada', 'and the user')
  })

  t.test('createSession returns the size of each room after joining, in order', async (t) => {
    const { store, T0 } = await setup(t)
    const make = async (rooms: string[]): Promise<unknown> =>
      await store.createSession({ id: unique('s'), tokenHash: hash(unique('t')), profile: null, user: null, context: null, rooms }, T0)
    t.same(await make(['a', 'b']), { ok: true, sizes: [1, 1] })
    t.same(await make(['b', 'c', 'a']), { ok: true, sizes: [2, 1, 2] })
    t.same(await make([]), { ok: true, sizes: [] })
  })

  t.test('authenticate refreshes lastSeen and the expiry', async (t) => {
    const { store, session, T0 } = await setup(t, { sessionTtl: 10_000 })
    const a = await session(T0)
    const auth = await store.authenticate(a.tokenHash, T0 + 8000)
    t.equal(auth.ok && auth.session.lastSeen, T0 + 8000)
    const page = await store.members(null, null, 100, T0 + 8000)
    t.equal(page.items[0]?.lastSeen, T0 + 8000, 'members shows the refreshed lastSeen')

    t.same(await store.sweep(T0 + 12_000, 100), [], 'not expired: idle time counts from the last authentication')
    const alive = await store.authenticate(a.tokenHash, T0 + 17_000)
    t.equal(alive.ok && alive.session.id, a.id, 'still alive 9 s after the refresh')
    t.same(await store.authenticate(a.tokenHash, T0 + 17_000 + 10_500), { ok: false, reason: 'unknown' }, 'expired after sessionTtl of idleness')
  })

  t.test('createSession refuses beyond maxSessions', async (t) => {
    const { store, session, T0 } = await setup(t, { maxSessions: 2 })
    const a = await session(T0)
    await session(T0)
    const extra = { id: unique('s'), tokenHash: hash('x'), profile: null, user: null, context: null, rooms: ['r'] }
    t.same(await store.createSession(extra, T0 + 1), { ok: false, reason: 'full' }, 'the third session is refused')
    t.same(await store.authenticate(extra.tokenHash, T0 + 2), { ok: false, reason: 'unknown' }, 'the refused session does not exist')
    t.equal(await store.lookup(extra.id, T0 + 2), null)
    t.same((await store.members('r', null, 100, T0 + 2)).items, [], 'nor did it join its rooms')
    t.equal((await store.stats()).sessions, 2)

    t.ok(await store.endSession(a.id))
    t.same(await store.createSession(extra, T0 + 3), { ok: true, sizes: [1] }, 'room again once a session ended')
    t.equal((await store.stats()).sessions, 2)

    const late = { id: unique('s'), tokenHash: hash('y'), profile: null, user: null, context: null, rooms: [] }
    t.same(await store.createSession(late, T0 + 4), { ok: false, reason: 'full' })
    t.equal((await store.sweep(T0 + 100_000, 100)).length, 2, 'both expired')
    t.equal((await store.createSession(late, T0 + 100_001)).ok, true, 'expired sessions free their places')
  })

  t.test('lookup', async (t) => {
    const { store, session, T0 } = await setup(t, { sessionTtl: 10_000 })
    const a = await session(T0)
    const u = await session(T0, { user: 'ursula' })
    t.same(await store.lookup(a.id, T0 + 1), { id: a.id, user: null })
    t.same(await store.lookup(u.id, T0 + 1), { id: u.id, user: 'ursula' }, 'with its user (for toUser)')
    t.equal(await store.lookup('no-such-session', T0 + 1), null)
    t.equal(await store.lookup(a.tokenHash, T0 + 1), null, 'a token hash is not an id')
    await store.endSession(a.id)
    t.equal(await store.lookup(a.id, T0 + 2), null, 'null after endSession')
    t.equal(await store.lookup(u.id, T0 + 10_500), null, 'null once expired, even before a sweep')
  })

  t.test('endSession returns rooms, profile, user and sizes, emits ended, token stops working', async (t) => {
    const { store, rec, session, publish, read, T0 } = await setup(t)
    const a = await session(T0, { rooms: ['r1', 'r2'], profile: { name: 'A' }, user: 'ann' })
    const b = await session(T0, { rooms: ['r1'] })
    await publish({ kind: 'session', id: a.id }, 'queued', T0 + 1)
    t.equal((await store.stats()).queued, 1)

    const ended = await store.endSession(a.id)
    t.ok(ended)
    t.equal(ended?.id, a.id)
    t.same(ended?.profile, { name: 'A' })
    t.equal(ended?.user, 'ann')
    t.same(sorted(ended?.rooms ?? []), ['r1', 'r2'])
    const sizeOf = (room: string): number | undefined => ended?.sizes[ended.rooms.indexOf(room)]
    t.same([sizeOf('r1'), sizeOf('r2')], [1, 0], 'members left in each room after the removal')
    t.equal((await store.stats()).queued, 0, 'its inbox is freed')
    await rec.waitFor('ended event', (evs) => evs.some((e) => e.type === 'ended' && e.sessionId === a.id))

    t.same(await store.authenticate(a.tokenHash, T0 + 2), { ok: false, reason: 'unknown' }, 'the token stops working')
    t.same(await store.poll(a.tokenHash, null, 1000, ALL, T0 + 2), { ok: false, reason: 'unknown' }, 'poll too')
    t.equal(await store.lookup(a.id, T0 + 2), null)
    t.equal(await store.read(a.id, null, ALL, T0 + 2), null, 'read of an ended session is null')
    t.same(await store.join(a.id, 'r3', T0 + 2), { result: 'no-session' })
    t.equal((await store.leave(a.id, 'r1', T0 + 2)).left, false)
    t.same((await store.members(null, null, 100, T0 + 2)).items.map((m) => m.id), [b.id], 'gone from everyone')
    t.same((await store.members('r1', null, 100, T0 + 2)).items.map((m) => m.id), [b.id], 'gone from its rooms')
    t.same((await store.members('r2', null, 100, T0 + 2)).items, [], 'a room whose last member left is empty')
    t.same(await store.userSessions('ann', T0 + 2), [], 'gone from its user')
    t.equal((await publish({ kind: 'room', room: 'r2' }, 'x', T0 + 3)).recipients, 0)
    t.equal((await publish({ kind: 'session', id: a.id }, 'x', T0 + 3)).recipients, 0)
    t.equal((await publish({ kind: 'user', user: 'ann' }, 'x', T0 + 3)).recipients, 0)
    t.equal((await publish({ kind: 'all' }, 'x', T0 + 3)).recipients, 1, 'broadcast reaches only the rest')
    t.same((await read(b.id, null, T0 + 4)).data, ['x'])
    t.equal(await store.endSession(a.id), null, 'ending it again returns null')
    t.equal((await store.stats()).sessions, 1)
  })

  /* ---------------------------------------------------------------------------------------- */
  /* Users                                                                                    */
  /* ---------------------------------------------------------------------------------------- */

  t.test('a message to a user reaches every live session of the user, and only them', async (t) => {
    const { session, publish, read, T0 } = await setup(t)
    const a1 = await session(T0, { user: 'u1' })
    const a2 = await session(T0, { user: 'u1' })
    const b = await session(T0, { user: 'u2' })
    const c = await session(T0)

    const sent = await publish({ kind: 'user', user: 'u1' }, 'to-u1', T0 + 1)
    t.equal(sent.recipients, 2, 'both sessions of u1')
    t.equal((await publish({ kind: 'user', user: 'nobody' }, 'lost', T0 + 2)).recipients, 0, 'an unknown user: 0')
    const a3 = await session(T0 + 3, { user: 'u1' })
    t.equal((await publish({ kind: 'user', user: 'u1' }, 'later', T0 + 4)).recipients, 3)

    const r1 = await read(a1.id, 0, T0 + 5)
    t.same(r1.data, ['to-u1', 'later'])
    t.equal(r1.messages[0], sent.json, 'the stored JSON, toUser included')
    t.same((await read(a2.id, 0, T0 + 5)).data, ['to-u1', 'later'])
    t.same((await read(a3.id, 0, T0 + 5)).data, ['later'], 'a session created after a user message does not get it')
    t.same((await read(b.id, 0, T0 + 5)).data, [], 'another user gets nothing')
    t.same((await read(c.id, 0, T0 + 5)).data, [], 'an anonymous session gets nothing')

    const r1b = await read(a1.id, r1.cursor, T0 + 6)
    t.same(r1b.data, [], 'each session acknowledges the user log for itself')
    t.same((await read(a2.id, 0, T0 + 6)).data, ['to-u1', 'later'], 'the other session still has them')
  })

  t.test('userSessions lists the live sessions of a user', async (t) => {
    const { store, session, T0 } = await setup(t, { sessionTtl: 10_000 })
    const a1 = await session(T0, { user: 'u1', profile: { tab: 1 } })
    const a2 = await session(T0 + 1, { user: 'u1' })
    await session(T0, { user: 'u2' })
    await session(T0)
    const byId = (ms: Array<{ id: string }>): string[] => sorted(ms.map((m) => m.id))
    const list = await store.userSessions('u1', T0 + 2)
    t.same(byId(list), sorted([a1.id, a2.id]))
    t.same(list.find((m) => m.id === a1.id), { id: a1.id, profile: { tab: 1 }, lastSeen: T0 })
    t.same(await store.userSessions('nobody', T0 + 2), [])
    await store.authenticate(a2.tokenHash, T0 + 6000)
    t.same(byId(await store.userSessions('u1', T0 + 10_500)), [a2.id], 'an expired session is not listed, even before a sweep')
    await store.endSession(a2.id)
    t.same(await store.userSessions('u1', T0 + 10_500), [])
  })

  t.test('endUser ends every session of the user', async (t) => {
    const { store, rec, session, publish, read, T0 } = await setup(t)
    const a1 = await session(T0, { user: 'u1', rooms: ['r'] })
    const a2 = await session(T0, { user: 'u1' })
    const b = await session(T0, { user: 'u2', rooms: ['r'] })
    await publish({ kind: 'user', user: 'u1' }, 'x', T0 + 1)

    const ended = await store.endUser('u1')
    t.same(sorted(ended.map((e) => e.id)), sorted([a1.id, a2.id]))
    const e1 = ended.find((e) => e.id === a1.id)
    t.same(e1 && { user: e1.user, rooms: e1.rooms, sizes: e1.sizes }, { user: 'u1', rooms: ['r'], sizes: [1] })
    await rec.waitFor('ended events of both', (evs) =>
      evs.some((e) => e.type === 'ended' && e.sessionId === a1.id) && evs.some((e) => e.type === 'ended' && e.sessionId === a2.id))
    for (const s of [a1, a2]) {
      t.same(await store.authenticate(s.tokenHash, T0 + 2), { ok: false, reason: 'unknown' }, 'its tokens stop working')
    }
    t.same(await store.userSessions('u1', T0 + 2), [])
    t.equal((await publish({ kind: 'user', user: 'u1' }, 'y', T0 + 3)).recipients, 0)
    t.same((await store.members('r', null, 100, T0 + 3)).items.map((m) => m.id), [b.id])
    t.equal((await store.stats()).sessions, 1)
    t.same((await read(b.id, 0, T0 + 4)).data, [], 'the other user is untouched')
    t.same(await store.endUser('u1'), [], 'nothing left to end')
    t.same(await store.endUser('nobody'), [])
  })

  t.test('maxSessionsPerUser: user-full, checked before full; ended and swept sessions free places', async (t) => {
    const { store, session, T0 } = await setup(t, { maxSessionsPerUser: 2, maxSessions: 4, sessionTtl: 10_000 })
    const a1 = await session(T0, { user: 'u1' })
    const a2 = await session(T0, { user: 'u1' })
    const make = async (user: string | null, now: number): Promise<unknown> =>
      await store.createSession({ id: unique('s'), tokenHash: hash(unique('t')), profile: null, user, context: null, rooms: [] }, now)
    t.same(await make('u1', T0 + 1), { ok: false, reason: 'user-full' }, 'a third session of u1 is refused')
    t.same((await store.userSessions('u1', T0 + 1)).length, 2, 'and not created')
    t.same(await make('u2', T0 + 1), { ok: true, sizes: [] }, 'another user is not limited by it')
    t.same(await make(null, T0 + 1), { ok: true, sizes: [] }, 'nor an anonymous session')
    t.same(await make('u1', T0 + 2), { ok: false, reason: 'user-full' }, 'user-full is answered before full')
    t.same(await make('u3', T0 + 2), { ok: false, reason: 'full' })

    await store.endSession(a1.id)
    t.same(await make('u1', T0 + 3), { ok: true, sizes: [] }, 'an ended session frees its place')
    t.same(await make('u1', T0 + 4), { ok: false, reason: 'user-full' })
    t.equal((await store.authenticate(a2.tokenHash, T0 + 5000)).ok, true)
    t.equal((await store.sweep(T0 + 12_000, 100)).length, 3, 'the sessions created at T0 expire')
    t.same(await make('u1', T0 + 12_001), { ok: true, sizes: [] }, 'a swept session frees its place')
  })
}
