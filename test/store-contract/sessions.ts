/**
 * The store contract: createSession, authenticate, maxSessions, endSession.
 * The rules the cases keep: index.ts; what they work with: setup.ts.
 */
import type { Test } from 'tap'
import { sha256 } from '../helpers/store.js'
import { type Contract, sorted, unique } from './setup.js'

export function sessionCases (t: Test, { setup }: Contract): void {
  t.test('createSession, authenticate, unknown token', async (t) => {
    const { store, session, read, T0 } = await setup(t)
    const profile = { name: 'Ada', n: 1 }
    const a = await session(T0, { rooms: ['lobby', 'dev'], profile })

    const info = await store.authenticate(a.tokenHash, T0 + 10)
    t.ok(info, 'the token hash authenticates')
    t.equal(info?.id, a.id)
    t.same(info?.profile, profile, 'profile is kept')
    t.same(sorted(info?.rooms ?? []), ['dev', 'lobby'], 'rooms given at creation are joined')
    t.equal(info?.lastSeen, T0 + 10, 'lastSeen is the authentication time')

    t.equal(await store.authenticate(sha256('not a token'), T0 + 20), null, 'an unknown token hash is refused')
    t.equal(await store.authenticate(a.token, T0 + 20), null, 'the raw token is not a credential, only its hash')
    t.equal(await store.authenticate(a.id, T0 + 20), null, 'the id is not a credential')

    const b = await session(T0 + 30)
    const infoB = await store.authenticate(b.tokenHash, T0 + 40)
    t.equal(infoB?.id, b.id, 'each token finds its own session')
    t.same(infoB?.profile, null, 'a session without profile has null')
    t.same(infoB?.rooms, [], 'a session without rooms has none')

    const r = await read(a.id, null, T0 + 50)
    t.same(r.messages, [], 'creating a session with rooms publishes nothing by itself')
    t.equal(r.missed, 0)
  })

  t.test('authenticate refreshes lastSeen and the expiry', async (t) => {
    const { store, session, T0 } = await setup(t, { sessionTtl: 10_000 })
    const a = await session(T0)
    const info = await store.authenticate(a.tokenHash, T0 + 8000)
    t.equal(info?.lastSeen, T0 + 8000)
    const [m] = await store.members()
    t.equal(m?.lastSeen, T0 + 8000, 'members() shows the refreshed lastSeen')

    t.same(await store.sweep(T0 + 12_000), [], 'not expired: idle time counts from the last authentication')
    t.equal((await store.authenticate(a.tokenHash, T0 + 17_000))?.id, a.id, 'still alive 9 s after the refresh')
    t.equal(await store.authenticate(a.tokenHash, T0 + 17_000 + 10_500), null, 'expired after sessionTtl of idleness')
  })

  t.test('createSession refuses beyond maxSessions', async (t) => {
    const { store, session, T0 } = await setup(t, { maxSessions: 2 })
    const a = await session(T0)
    await session(T0)
    const extra = { id: unique('s'), tokenHash: sha256('x'), profile: null, rooms: [] }
    t.equal(await store.createSession(extra, T0 + 1), false, 'the third session is refused')
    t.equal(await store.authenticate(extra.tokenHash, T0 + 2), null, 'the refused session does not exist')
    t.notOk((await store.members()).some((m) => m.id === extra.id), 'it is not a member')
    t.equal(await store.read(extra.id, null, 100, T0 + 2), null, 'and has no mailbox')
    t.equal((await store.stats()).sessions, 2)

    t.ok(await store.endSession(a.id))
    t.equal(await store.createSession(extra, T0 + 3), true, 'room again once a session ended')
    t.equal((await store.stats()).sessions, 2)

    const late = { id: unique('s'), tokenHash: sha256('y'), profile: null, rooms: [] }
    t.equal(await store.createSession(late, T0 + 4), false)
    t.equal((await store.sweep(T0 + 100_000)).length, 2, 'both expired')
    t.equal(await store.createSession(late, T0 + 100_001), true, 'expired sessions free their places')
  })

  t.test('a session is known by its id, not by its token hash; ended, it is gone', async (t) => {
    const { store, session, T0 } = await setup(t)
    const a = await session(T0)
    t.same((await store.members()).map((m) => m.id), [a.id])
    const found = await store.read(a.id, null, 100, T0 + 1)
    t.ok(found !== null && found !== 'bad-cursor', 'its mailbox is found by its id')
    t.equal(await store.read('no-such-session', null, 100, T0 + 1), null)
    t.equal(await store.read(a.tokenHash, null, 100, T0 + 1), null, 'a token hash is not an id')
    t.equal(await store.endSession(a.tokenHash), null, 'nor does it end the session')
    t.ok(await store.endSession(a.id))
    t.same(await store.members(), [], 'gone after endSession')
    t.equal(await store.authenticate(a.tokenHash, T0 + 2), null)
    t.equal(await store.endSession(a.id), null)
  })

  t.test('endSession returns rooms and profile, emits ended, token stops working', async (t) => {
    const { store, rec, session, publish, read, T0 } = await setup(t)
    const a = await session(T0, { rooms: ['r1', 'r2'], profile: { name: 'A' } })
    const b = await session(T0, { rooms: ['r1'] })
    await publish({ kind: 'session', id: a.id }, 'queued', T0 + 1)

    const ended = await store.endSession(a.id)
    t.ok(ended)
    t.equal(ended?.id, a.id)
    t.same(ended?.profile, { name: 'A' })
    t.same(sorted(ended?.rooms ?? []), ['r1', 'r2'])
    await rec.waitFor('ended event', (evs) => evs.some((e) => e.type === 'ended' && e.sessionId === a.id))

    t.equal(await store.authenticate(a.tokenHash, T0 + 2), null, 'the token stops working')
    t.equal(await store.leave(a.id, 'r1'), false, 'leave of an ended session is false')
    t.equal(await store.read(a.id, null, 100, T0 + 2), null, 'read of an ended session is null')
    t.equal(await store.beginPoll(a.id, 1000, T0 + 2), null, 'beginPoll of an ended session is null')
    t.equal(await store.join(a.id, 'r3'), 'no-session')
    t.same((await store.members()).map((m) => m.id), [b.id], 'gone from members()')
    t.same((await store.members('r1')).map((m) => m.id), [b.id], 'gone from its rooms')
    t.same(await store.members('r2'), [], 'a room whose last member left is empty')
    t.equal((await publish({ kind: 'room', room: 'r2' }, 'x', T0 + 3)).recipients, 0)
    t.equal((await publish({ kind: 'session', id: a.id }, 'x', T0 + 3)).recipients, 0)
    t.equal((await publish({ kind: 'all' }, 'x', T0 + 3)).recipients, 1, 'broadcast reaches only the rest')
    t.same((await read(b.id, null, T0 + 4)).data, ['x'])
    t.equal(await store.endSession(a.id), null, 'ending it again returns null')
    t.equal((await store.stats()).sessions, 1)
  })
}
