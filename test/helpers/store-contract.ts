/**
 * The store contract: what every `MailboxStore` must do, tested only through the interface in
 * types/index.ts. Run it against a store with
 *
 *   storeContract(t, 'memory', async () => ({ store: new MemoryStore(), cleanup: async () => {} }))
 *
 * Rules the suite keeps so that any store (memory, Redis, ...) can pass it:
 * - time is only what the tests pass as `now`: each test starts at the real clock (so a store
 *   that also sets real expiry on its keys as a safety net is not disturbed) and advances it by
 *   hand, far beyond the configured TTLs, without waiting;
 * - cursors are the mailbox sequence numbers types/index.ts defines (0 = before the first
 *   message); most tests only compare them, the model-based test checks their values;
 * - events may arrive asynchronously (a Redis store delivers them through pub/sub), so the tests
 *   wait for the events they expect, and check that an event did NOT happen only after a later
 *   "fence" event (a `poll` event of their own) has arrived;
 * - TTL boundaries are not pinned to the millisecond: "before" and "after" are clearly apart.
 */
import { deepStrictEqual } from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import type { Test } from 'tap'
import type {
  MailboxStore,
  NewSession,
  OutgoingMessage,
  PublishTarget,
  ReadResult,
  StoreConfig,
  StoreEvent
} from '../../types/index.js'

export interface ContractStoreFactory {
  /** A fresh, empty store, not yet init'ed; cleanup removes everything it created. */
  (): Promise<{ store: MailboxStore, cleanup: () => Promise<void> }>
}

/** Small limits; TTLs are in the tests' own clock (see `now`), so their size costs no time. */
const BASE_CONFIG: StoreConfig = {
  messageTtl: 30_000,
  sessionTtl: 60_000,
  maxMailboxMessages: 50,
  maxSessions: 100,
  maxRoomsPerSession: 5
}

/** How long to wait for an event a store may deliver asynchronously. */
const EVENT_TIMEOUT = 3000

interface TestSession {
  id: string
  token: string
  tokenHash: string
}

/** Records a store's events and lets a test wait for one. */
class Recorder {
  readonly events: StoreEvent[] = []
  readonly #waiters = new Set<() => void>()

  readonly listener = (event: StoreEvent): void => {
    this.events.push(event)
    for (const w of [...this.#waiters]) w()
  }

  /** Resolves with the first truthy result of `find` over the events recorded from `from` on. */
  async waitFor<T> (what: string, find: (events: StoreEvent[]) => T | undefined | null | false, from = 0): Promise<T> {
    const check = (): T | undefined => {
      const found = find(this.events.slice(from))
      return found === undefined || found === null || found === false ? undefined : found
    }
    const now = check()
    if (now !== undefined) return now
    return await new Promise<T>((resolve, reject) => {
      const waiter = (): void => {
        const found = check()
        if (found === undefined) return
        clearTimeout(timer)
        this.#waiters.delete(waiter)
        resolve(found)
      }
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter)
        reject(new Error(`timed out after ${EVENT_TIMEOUT} ms waiting for ${what}`))
      }, EVENT_TIMEOUT)
      this.#waiters.add(waiter)
    })
  }
}

/** Everything one contract test works with. */
interface Ctx {
  store: MailboxStore
  rec: Recorder
  /** The test's clock origin (ms); pass `T0 + offset` as `now`. */
  T0: number
  session: (now: number, opts?: { rooms?: string[], profile?: Record<string, unknown> | null }) => Promise<TestSession>
  publish: (target: PublishTarget, data: unknown, now: number) => Promise<{ id: string, recipients: number }>
  /** `read` that fails the test on null / 'bad-cursor', with the messages' `data` decoded. */
  read: (id: string, cursor: number | null, now: number, limit?: number) => Promise<ReadResult & { data: unknown[] }>
  /** Waits until a `poll` event of our own has arrived: every event emitted before it has too. */
  fence: (sessionId: string, now: number) => Promise<void>
}

function hash (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

function unique (prefix: string): string {
  return `${prefix}-${randomBytes(9).toString('base64url')}`
}

function sorted (a: Iterable<string>): string[] {
  return [...a].sort()
}

export function storeContract (t: Test, name: string, factory: ContractStoreFactory): void {
  async function setup (tt: Test, config: Partial<StoreConfig> = {}): Promise<Ctx> {
    const { store, cleanup } = await factory()
    const rec = new Recorder()
    await store.init({ ...BASE_CONFIG, ...config }, rec.listener)
    tt.teardown(async () => {
      await store.close()
      await cleanup()
    })
    const T0 = Date.now()

    const ctx: Ctx = {
      store,
      rec,
      T0,
      async session (now, opts = {}) {
        const token = randomBytes(24).toString('base64url')
        const s: NewSession = {
          id: unique('s'),
          tokenHash: hash(token),
          profile: opts.profile === undefined ? null : opts.profile,
          rooms: opts.rooms ?? []
        }
        tt.equal(await store.createSession(s, now), true, 'createSession succeeds')
        return { id: s.id, token, tokenHash: s.tokenHash }
      },
      async publish (target, data, now) {
        const id = unique('m')
        const wire = {
          id,
          type: 'message',
          from: null,
          room: target.kind === 'room' ? target.room : null,
          to: target.kind === 'session' ? target.id : null,
          data,
          ts: now
        }
        const message: OutgoingMessage = { id, ts: now, json: JSON.stringify(wire), target }
        return { id, recipients: await store.publish(message, now) }
      },
      async read (id, cursor, now, limit = 100) {
        const r = await store.read(id, cursor, limit, now)
        if (r === null || r === 'bad-cursor') {
          tt.fail(`read(${id}, ${cursor}) returned ${String(r)}`)
          throw new Error(`read returned ${String(r)}`)
        }
        return { ...r, data: r.messages.map((m) => (JSON.parse(m) as { data: unknown }).data) }
      },
      async fence (sessionId, now) {
        const seq = await store.beginPoll(sessionId, 1000, now)
        tt.type(seq, 'number', 'fence: beginPoll returns a sequence')
        await rec.waitFor(`the poll event of ${sessionId}`, (evs) =>
          evs.some((e) => e.type === 'poll' && e.sessionId === sessionId && e.seq === seq))
        await store.endPoll(sessionId, seq as number, now)
      }
    }
    return ctx
  }

  /** The session ids woken by wake events from index `from` on; `all` when one woke everybody. */
  function wokenSince (rec: Recorder, from: number): { all: boolean, ids: string[] } {
    let all = false
    const ids = new Set<string>()
    for (const e of rec.events.slice(from)) {
      if (e.type !== 'wake') continue
      if (e.sessions === null) all = true
      else for (const id of e.sessions) ids.add(id)
    }
    return { all, ids: sorted(ids) }
  }

  t.test(`${name} store contract`, async (t) => {
    /* -------------------------------------------------------------------------------------- */
    /* Sessions                                                                               */
    /* -------------------------------------------------------------------------------------- */

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

      t.equal(await store.authenticate(hash('not a token'), T0 + 20), null, 'an unknown token hash is refused')
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
      const extra = { id: unique('s'), tokenHash: hash('x'), profile: null, rooms: [] }
      t.equal(await store.createSession(extra, T0 + 1), false, 'the third session is refused')
      t.equal(await store.authenticate(extra.tokenHash, T0 + 2), null, 'the refused session does not exist')
      t.notOk((await store.members()).some((m) => m.id === extra.id), 'it is not a member')
      t.equal(await store.read(extra.id, null, 100, T0 + 2), null, 'and has no mailbox')
      t.equal((await store.stats()).sessions, 2)

      t.ok(await store.endSession(a.id))
      t.equal(await store.createSession(extra, T0 + 3), true, 'room again once a session ended')
      t.equal((await store.stats()).sessions, 2)

      const late = { id: unique('s'), tokenHash: hash('y'), profile: null, rooms: [] }
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

    /* -------------------------------------------------------------------------------------- */
    /* Publishing and reading                                                                 */
    /* -------------------------------------------------------------------------------------- */

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

    /* -------------------------------------------------------------------------------------- */
    /* Losing messages: expiry and overflow, and `missed`                                     */
    /* -------------------------------------------------------------------------------------- */

    t.test('messageTtl: an undelivered message expires, counted in missed exactly once', async (t) => {
      const { store, session, publish, read, T0 } = await setup(t, { messageTtl: 10_000 })
      const a = await session(T0)
      await publish({ kind: 'session', id: a.id }, 'old', T0)
      await publish({ kind: 'session', id: a.id }, 'new', T0 + 8000)

      const before = await store.read(a.id, null, 0, T0 + 9500)
      t.same(before !== null && before !== 'bad-cursor' ? before.missed : before, 0, 'nothing expired before messageTtl')

      const r = await read(a.id, 0, T0 + 12_000)
      t.same(r.data, ['new'], 'the expired message is gone, the younger one is there')
      t.equal(r.missed, 1, 'and counted as missed')
      const again = await read(a.id, 0, T0 + 12_001)
      t.same(again.data, ['new'])
      t.equal(again.missed, 0, 'counted once')

      const st = await store.stats()
      t.equal(st.dropped, 1, 'stats.dropped counts the expired undelivered message')
      t.equal(st.queued, 1, 'queued no longer counts it')
    })

    t.test('messageTtl: expiry of delivered messages is never counted as missed', async (t) => {
      const { store, session, publish, read, T0 } = await setup(t, { messageTtl: 10_000 })
      const a = await session(T0)
      await publish({ kind: 'session', id: a.id }, 1, T0)
      await publish({ kind: 'session', id: a.id }, 2, T0 + 1)
      const r1 = await read(a.id, 0, T0 + 2, 1)
      t.same(r1.data, [1], '1 delivered, not acknowledged')
      await store.authenticate(a.tokenHash, T0 + 9000)

      const r2 = await read(a.id, 0, T0 + 20_000)
      t.same(r2.messages, [], 'both expired')
      t.equal(r2.missed, 1, 'only the undelivered one is missed')
      t.ok(r2.cursor >= 0)
      t.equal((await store.stats()).dropped, 1)
      t.equal((await store.stats()).queued, 0)

      // The cursor stays usable after everything it pointed past expired.
      await publish({ kind: 'session', id: a.id }, 3, T0 + 20_001)
      const r3 = await read(a.id, r2.cursor, T0 + 20_002)
      t.same(r3.data, [3])
      t.equal(r3.missed, 0)
    })

    t.test('expiry of messages is counted for a mailbox nobody reads, reported by the next read', async (t) => {
      const { store, session, publish, read, T0 } = await setup(t, { messageTtl: 10_000 })
      const a = await session(T0)
      const r0 = await read(a.id, null, T0)
      for (let i = 0; i < 3; i++) await publish({ kind: 'session', id: a.id }, i, T0 + i)
      // A publish after the TTL may drop expired ones on the way; either way they count once.
      await publish({ kind: 'session', id: a.id }, 'fresh', T0 + 15_000)
      const r = await read(a.id, r0.cursor, T0 + 15_001)
      t.same(r.data, ['fresh'])
      t.equal(r.missed, 3)
      t.equal((await read(a.id, r.cursor, T0 + 15_002)).missed, 0)
      t.equal((await store.stats()).dropped, 3)
    })

    t.test('overflow drops the oldest and counts the undelivered ones in missed', async (t) => {
      const { store, session, publish, read, T0 } = await setup(t, { maxMailboxMessages: 3 })
      const a = await session(T0)
      for (let i = 1; i <= 5; i++) await publish({ kind: 'session', id: a.id }, i, T0 + i)
      t.equal((await store.stats()).queued, 3, 'the mailbox holds at most maxMailboxMessages')
      const r = await read(a.id, 0, T0 + 10)
      t.same(r.data, [3, 4, 5], 'the oldest were dropped')
      t.equal(r.missed, 2)
      t.equal((await store.stats()).dropped, 2)
    })

    t.test('overflow of delivered but unacknowledged messages is not counted', async (t) => {
      const { store, session, publish, read, T0 } = await setup(t, { maxMailboxMessages: 3 })
      const a = await session(T0)
      for (let i = 1; i <= 3; i++) await publish({ kind: 'session', id: a.id }, i, T0 + i)
      const r1 = await read(a.id, 0, T0 + 4)
      t.same(r1.data, [1, 2, 3])
      await publish({ kind: 'session', id: a.id }, 4, T0 + 5)
      await publish({ kind: 'session', id: a.id }, 5, T0 + 6)

      const lost = await read(a.id, 0, T0 + 7)
      t.same(lost.data, [3, 4, 5], 'delivered messages count toward the limit and were dropped oldest first')
      t.equal(lost.missed, 0, 'they had been delivered: nothing missed')
      t.equal((await store.stats()).dropped, 0)
      const next = await read(a.id, lost.cursor, T0 + 8)
      t.same(next.messages, [])
    })

    t.test('missed resets after being reported and counts only new losses', async (t) => {
      const { session, publish, read, T0 } = await setup(t, { maxMailboxMessages: 2 })
      const a = await session(T0)
      for (let i = 1; i <= 4; i++) await publish({ kind: 'session', id: a.id }, i, T0 + i)
      const r1 = await read(a.id, null, T0 + 10)
      t.same(r1.data, [3, 4])
      t.equal(r1.missed, 2)
      const r2 = await read(a.id, r1.cursor, T0 + 11)
      t.equal(r2.missed, 0, 'reported once')
      for (let i = 5; i <= 9; i++) await publish({ kind: 'session', id: a.id }, i, T0 + i + 10)
      const r3 = await read(a.id, r2.cursor, T0 + 30)
      t.same(r3.data, [8, 9])
      t.equal(r3.missed, 3, 'only 5, 6, 7')
      const r4 = await read(a.id, r3.cursor, T0 + 31)
      t.equal(r4.missed, 0)
    })

    t.test('missed is reported even when the read returns no messages', async (t) => {
      const { store, session, publish, read, T0 } = await setup(t, { maxMailboxMessages: 2 })
      const a = await session(T0)
      for (let i = 1; i <= 3; i++) await publish({ kind: 'session', id: a.id }, i, T0 + i)
      const r = await store.read(a.id, 0, 0, T0 + 5)
      t.same(r !== null && r !== 'bad-cursor' ? [r.messages, r.cursor, r.missed] : r, [[], 0, 1], 'limit 0: no messages, one missed')
      t.same((await read(a.id, 0, T0 + 6)).data, [2, 3], 'nothing was delivered by it')
    })

    /* -------------------------------------------------------------------------------------- */
    /* Events                                                                                 */
    /* -------------------------------------------------------------------------------------- */

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

    /* -------------------------------------------------------------------------------------- */
    /* Rooms                                                                                  */
    /* -------------------------------------------------------------------------------------- */

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

    /* -------------------------------------------------------------------------------------- */
    /* Session expiry                                                                         */
    /* -------------------------------------------------------------------------------------- */

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

    /* -------------------------------------------------------------------------------------- */
    /* Stats                                                                                  */
    /* -------------------------------------------------------------------------------------- */

    t.test('stats counters: sessions, queued, delivered, dropped', async (t) => {
      const { store, session, publish, read, T0 } = await setup(t, { maxMailboxMessages: 3 })
      t.same(await store.stats(), { sessions: 0, queued: 0, delivered: 0, dropped: 0 })
      const a = await session(T0)
      const b = await session(T0)
      t.equal((await store.stats()).sessions, 2)

      await publish({ kind: 'all' }, 1, T0 + 1)
      await publish({ kind: 'session', id: a.id }, 2, T0 + 2)
      t.same(await store.stats(), { sessions: 2, queued: 3, delivered: 0, dropped: 0 }, 'a broadcast queues once per mailbox')

      const r1 = await read(a.id, 0, T0 + 3)
      t.same(r1.data, [1, 2])
      t.same(await store.stats(), { sessions: 2, queued: 3, delivered: 2, dropped: 0 }, 'delivered, not yet acknowledged')
      await read(a.id, 0, T0 + 4)
      t.equal((await store.stats()).delivered, 2, 'a re-delivery is not counted again')
      await read(a.id, r1.cursor, T0 + 5)
      t.same(await store.stats(), { sessions: 2, queued: 1, delivered: 2, dropped: 0 }, 'acknowledged messages leave the queue')

      for (let i = 3; i <= 6; i++) await publish({ kind: 'session', id: b.id }, i, T0 + i)
      t.same(await store.stats(), { sessions: 2, queued: 3, delivered: 2, dropped: 2 }, 'overflow of b: 1 and 3 dropped undelivered')
      const rb = await read(b.id, null, T0 + 10)
      t.same(rb.data, [4, 5, 6])
      t.same(await store.stats(), { sessions: 2, queued: 3, delivered: 5, dropped: 2 })

      await store.endSession(b.id)
      t.same(await store.stats(), { sessions: 1, queued: 0, delivered: 5, dropped: 2 }, 'ending a session frees its mailbox')
    })

    /* -------------------------------------------------------------------------------------- */
    /* Model-based: random publish / read / time sequences against a reference model          */
    /* -------------------------------------------------------------------------------------- */

    t.test('random operation sequences match the reference mailbox model', async (t) => {
      const config: StoreConfig = { ...BASE_CONFIG, messageTtl: 10_000, sessionTtl: 1e9, maxMailboxMessages: 4, maxRoomsPerSession: 5 }
      const runs = 40
      let ops = 0
      await fc.assert(
        fc.asyncProperty(fc.array(opArbitrary, { minLength: 1, maxLength: 30 }), async (plan) => {
          const { store, cleanup } = await factory()
          try {
            await store.init(config, () => {})
            ops += await runModel(store, config, plan)
          } finally {
            await store.close()
            await cleanup()
          }
        }),
        { numRuns: runs, seed: 20261128, endOnFailure: true }
      )
      t.pass(`${runs} random sequences (${ops} operations) matched the model`)
    })
  })
}

/* ---------------------------------------------------------------------------------------- */
/* The reference model of two mailboxes (sessions 0 and 1, both in room "r")                */
/* ---------------------------------------------------------------------------------------- */

type Op =
  | { op: 'publish', to: 'all' | 'room' | 0 | 1 }
  | { op: 'read', who: 0 | 1, cursor: 'latest' | 'previous' | 'null', limit: number }
  | { op: 'wait', ms: number }

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('publish' as const), to: fc.constantFrom('all' as const, 'room' as const, 0 as const, 1 as const) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('read' as const),
      who: fc.constantFrom(0 as const, 1 as const),
      cursor: fc.constantFrom('latest' as const, 'previous' as const, 'null' as const),
      limit: fc.integer({ min: 0, max: 5 })
    })
  },
  // Multiples of 3 never add up to the 10 000 ms messageTtl: the model does not pin the boundary.
  { weight: 2, arbitrary: fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 2333 }).map((n) => n * 3) }) }
)

interface ModelMailbox {
  /** Queued (not acknowledged, not dropped) messages, oldest first. */
  items: Array<{ seq: number, ts: number, data: number }>
  nextSeq: number
  issued: number
  missed: number
  /** The cursor of the client's latest answer, and the one it sent before (a "lost response" resend). */
  latest: number
  previous: number
}

/** Plays `plan` on the store and on the model, throwing at the first difference. Returns the number of operations. */
async function runModel (store: MailboxStore, config: StoreConfig, plan: Op[]): Promise<number> {
  let now = Date.now()
  const ids = [unique('s'), unique('s')]
  for (const id of ids) {
    const ok = await store.createSession({ id, tokenHash: hash(id), profile: null, rooms: ['r'] }, now)
    deepStrictEqual(ok, true, 'createSession')
  }
  const boxes: ModelMailbox[] = ids.map(() => ({ items: [], nextSeq: 1, issued: 0, missed: 0, latest: 0, previous: 0 }))
  const totals = { delivered: 0, dropped: 0 }
  let counter = 0

  const drop = (box: ModelMailbox): void => {
    const gone = box.items.shift()
    if (gone !== undefined && gone.seq > box.issued) {
      box.missed++
      totals.dropped++
    }
  }
  const expire = (box: ModelMailbox): void => {
    while (box.items.length > 0 && box.items[0].ts + config.messageTtl <= now) drop(box)
  }

  for (const [step, o] of plan.entries()) {
    const where = `step ${step} ${JSON.stringify(o)}`
    if (o.op === 'wait') {
      now += o.ms
    } else if (o.op === 'publish') {
      const data = ++counter
      const target: PublishTarget = o.to === 'all'
        ? { kind: 'all' }
        : o.to === 'room' ? { kind: 'room', room: 'r' } : { kind: 'session', id: ids[o.to] }
      const recipients = typeof o.to === 'number' ? [boxes[o.to]] : boxes
      for (const box of recipients) {
        expire(box)
        while (box.items.length >= config.maxMailboxMessages) drop(box)
        box.items.push({ seq: box.nextSeq++, ts: now, data })
      }
      const json = JSON.stringify({ id: `m${data}`, type: 'message', from: null, room: null, to: null, data, ts: now })
      const count = await store.publish({ id: `m${data}-${ids[0]}`, ts: now, json, target }, now)
      deepStrictEqual(count, recipients.length, `${where}: recipients`)
    } else {
      const box = boxes[o.who]
      const sent = o.cursor === 'null' ? null : o.cursor === 'latest' ? box.latest : box.previous
      const after = sent ?? box.issued
      // The client's acknowledged position only moves forward: "previous" is a resend of the
      // cursor it sent last, which is never behind what it acknowledged.
      while (box.items.length > 0 && box.items[0].seq <= after) box.items.shift()
      expire(box)
      const out = box.items.filter((m) => m.seq > after).slice(0, o.limit)
      const cursor = out.length > 0 ? out[out.length - 1].seq : after
      for (const m of out) {
        if (m.seq > box.issued) totals.delivered++
      }
      box.issued = Math.max(box.issued, cursor)
      const expected = { data: out.map((m) => m.data), cursor, missed: box.missed }
      box.missed = 0

      const r = await store.read(ids[o.who], sent, o.limit, now)
      if (r === null || r === 'bad-cursor') throw new Error(`${where}: read returned ${String(r)}`)
      const got = { data: r.messages.map((m) => (JSON.parse(m) as { data: number }).data), cursor: r.cursor, missed: r.missed }
      deepStrictEqual(got, expected, `${where}: read`)
      if (sent !== null) {
        box.previous = sent
        box.latest = cursor
      } else {
        box.previous = box.latest = cursor
      }
    }
    // The model drops expired messages lazily (when the mailbox is read or appended to); a store
    // may drop them earlier. So queued and dropped are exact up to the expired ones still queued.
    const st = await store.stats()
    let queued = 0
    let stale = 0
    let staleUndelivered = 0
    for (const b of boxes) {
      queued += b.items.length
      for (const m of b.items) {
        if (m.ts + config.messageTtl > now) continue
        stale++
        if (m.seq > b.issued) staleUndelivered++
      }
    }
    deepStrictEqual(st.sessions, 2, `${where}: stats.sessions`)
    deepStrictEqual(st.delivered, totals.delivered, `${where}: stats.delivered`)
    deepStrictEqual(st.queued <= queued && st.queued >= queued - stale, true, `${where}: stats.queued ${st.queued}, model ${queued} (${stale} expired)`)
    deepStrictEqual(st.dropped >= totals.dropped && st.dropped <= totals.dropped + staleUndelivered, true,
      `${where}: stats.dropped ${st.dropped}, model ${totals.dropped} (+${staleUndelivered} expired)`)
  }
  return plan.length
}
