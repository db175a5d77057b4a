/** Store contract v2: rate limits (fixed windows per session and bucket, per key for register). */
import type { Test } from 'tap'
import type { AuthResult, CreateResult, RateCheck } from '../../lib/stores/store.js'
import { hash, unique, type Setup } from './helpers.js'

const ok = (r: AuthResult | CreateResult): boolean => r.ok
const retry = (r: AuthResult | CreateResult): number | null => !r.ok && r.reason === 'limited' ? r.retryMs : null

export function rateCases (t: Test, setup: Setup): void {
  t.test('rate buckets: fixed windows per session and bucket, counted only when allowed', async (t) => {
    const { store, session, T0 } = await setup(t)
    const a = await session(T0)
    const b = await session(T0)
    const messages: RateCheck = { bucket: 'messages', max: 3, window: 1000 }
    const joins: RateCheck = { bucket: 'joins', max: 1, window: 10_000 }

    t.ok(ok(await store.authenticate(a.tokenHash, T0 + 100, messages)), '1: the window starts here')
    t.ok(ok(await store.authenticate(a.tokenHash, T0 + 200, messages)))
    t.ok(ok(await store.authenticate(a.tokenHash, T0 + 300, messages)))
    const refused = await store.authenticate(a.tokenHash, T0 + 400, messages)
    t.same(refused, { ok: false, reason: 'limited', retryMs: 700 }, 'the fourth is refused until the window ends')
    t.equal(retry(await store.authenticate(a.tokenHash, T0 + 1000, messages)), 100, 'refusals were not counted, the window did not move')
    t.ok(ok(await store.authenticate(a.tokenHash, T0 + 1100, messages)), 'a new window')
    t.ok(ok(await store.authenticate(a.tokenHash, T0 + 1150, messages)))
    t.ok(ok(await store.authenticate(a.tokenHash, T0 + 1200, messages)))
    t.equal(retry(await store.authenticate(a.tokenHash, T0 + 1300, messages)), 800)

    t.ok(ok(await store.authenticate(a.tokenHash, T0 + 1300)), 'without a rate: always allowed')
    t.ok(ok(await store.authenticate(a.tokenHash, T0 + 1300, joins)), 'another bucket counts apart')
    t.equal(retry(await store.authenticate(a.tokenHash, T0 + 1400, joins)), 9900)
    t.ok(ok(await store.authenticate(b.tokenHash, T0 + 1400, messages)), 'another session counts apart')
    t.ok(ok(await store.authenticate(b.tokenHash, T0 + 1400, joins)))

    const c = await session(T0 + 2000)
    const rooms: RateCheck = { bucket: 'joins', max: 5, window: 10_000, cost: 3 }
    t.ok(ok(await store.authenticate(c.tokenHash, T0 + 2000, rooms)), 'cost 3 of 5')
    t.equal(retry(await store.authenticate(c.tokenHash, T0 + 2001, rooms)), 9999, 'another 3 does not fit')
    t.ok(ok(await store.authenticate(c.tokenHash, T0 + 2002, { ...rooms, cost: 2 })), 'but 2 does')
    t.equal(retry(await store.authenticate(c.tokenHash, T0 + 2003, { ...rooms, cost: 1 })), 9997)
    t.same(await store.authenticate('no-such-token', T0 + 2004, messages), { ok: false, reason: 'unknown' }, 'unknown before limited')
  })

  t.test('refund gives one back in the same window', async (t) => {
    const { store, session, T0 } = await setup(t)
    const a = await session(T0)
    const messages: RateCheck = { bucket: 'messages', max: 2, window: 1000 }
    t.ok(ok(await store.authenticate(a.tokenHash, T0, messages)))
    t.ok(ok(await store.authenticate(a.tokenHash, T0 + 10, messages)))
    t.notOk(ok(await store.authenticate(a.tokenHash, T0 + 20, messages)), 'full')
    await store.refund(a.id, 'messages', T0 + 30)
    t.ok(ok(await store.authenticate(a.tokenHash, T0 + 40, messages)), 'one given back (a refused send)')
    t.notOk(ok(await store.authenticate(a.tokenHash, T0 + 50, messages)), 'only one')
    await store.refund(a.id, 'joins', T0 + 60)
    t.notOk(ok(await store.authenticate(a.tokenHash, T0 + 70, messages)), 'a refund of another bucket changes nothing here')
    await store.refund('no-such-session', 'messages', T0 + 80)

    // A refund after the window ended does not carry into the next one.
    await store.refund(a.id, 'messages', T0 + 1500)
    t.ok(ok(await store.authenticate(a.tokenHash, T0 + 1600, messages)))
    t.ok(ok(await store.authenticate(a.tokenHash, T0 + 1700, messages)))
    t.notOk(ok(await store.authenticate(a.tokenHash, T0 + 1800, messages)), 'the new window has its max, no more')
    // Refunds never go below zero.
    const b = await session(T0 + 1800)
    for (let i = 0; i < 3; i++) await store.refund(b.id, 'messages', T0 + 1800)
    t.ok(ok(await store.authenticate(b.tokenHash, T0 + 1801, messages)))
    t.ok(ok(await store.authenticate(b.tokenHash, T0 + 1802, messages)))
    t.notOk(ok(await store.authenticate(b.tokenHash, T0 + 1803, messages)), 'refunds of nothing counted gave nothing')
  })

  t.test('register rate per key: counted only when a session is created, checked first', async (t) => {
    const { store, session, T0 } = await setup(t, { maxSessions: 5, maxSessionsPerUser: 1 })
    const make = async (key: string, now: number, user: string | null = null): Promise<CreateResult> =>
      await store.createSession({ id: unique('s'), tokenHash: hash(unique('t')), profile: null, user, context: null, rooms: [] }, now,
        { bucket: 'register', max: 2, window: 60_000, key })
    t.ok(ok(await make('1.2.3.4', T0)))
    t.ok(ok(await make('1.2.3.4', T0 + 1000)))
    const refused = await make('1.2.3.4', T0 + 2000)
    t.same(refused, { ok: false, reason: 'limited', retryMs: 58_000 }, 'the third from the same key is refused')
    t.equal((await store.stats()).sessions, 2, 'and not created')
    t.ok(ok(await make('5.6.7.8', T0 + 2000, 'u')), 'another key counts apart')
    t.same(await make('5.6.7.8', T0 + 3000, 'u'), { ok: false, reason: 'user-full' })
    t.ok(ok(await make('5.6.7.8', T0 + 4000)), 'a refusal (user-full) was not counted')
    t.same(await make('5.6.7.8', T0 + 5000, 'u'), { ok: false, reason: 'limited', retryMs: 57_000 }, 'limited is answered before user-full')
    await session(T0 + 5000)
    t.same(await make('9.9.9.9', T0 + 6000), { ok: false, reason: 'full' })
    t.same(await make('1.2.3.4', T0 + 6000), { ok: false, reason: 'limited', retryMs: 54_000 }, 'and before full')
    await store.sweep(T0 + 100_000, 100)
    t.ok(ok(await make('9.9.9.9', T0 + 100_000)), 'full was not counted either')
    t.ok(ok(await make('1.2.3.4', T0 + 100_000)), 'a new window')
    t.ok(ok(await make('1.2.3.4', T0 + 100_001)))
    t.notOk(ok(await make('1.2.3.4', T0 + 100_002)))
  })
}
