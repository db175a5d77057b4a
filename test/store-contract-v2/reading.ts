/** Store contract v2: publishing and reading (cursors, order, limits, lost responses, HEAD). */
import type { Test } from 'tap'
import { ALL, decode, type Setup } from './helpers.js'

export function readingCases (t: Test, setup: Setup): void {
  t.test('publish to all, a room, a session, a user: recipients and delivery', async (t) => {
    const { session, publish, read, T0 } = await setup(t)
    t.equal((await publish({ kind: 'all' }, 'nobody', T0)).recipients, 0, 'no sessions: 0')
    const a = await session(T0, { rooms: ['r'], user: 'u' })
    const b = await session(T0, { rooms: ['r'] })
    const c = await session(T0)

    t.equal((await publish({ kind: 'all' }, 'all', T0 + 1)).recipients, 3)
    t.equal((await publish({ kind: 'room', room: 'r' }, 'room', T0 + 2)).recipients, 2)
    t.equal((await publish({ kind: 'session', id: c.id }, 'to-c', T0 + 3)).recipients, 1)
    t.equal((await publish({ kind: 'user', user: 'u' }, 'to-u', T0 + 4)).recipients, 1)
    t.equal((await publish({ kind: 'session', id: 'no-such-session' }, 'lost', T0 + 5)).recipients, 0, 'unknown session: 0')
    t.equal((await publish({ kind: 'room', room: 'empty' }, 'lost', T0 + 5)).recipients, 0, 'empty room: 0')
    t.equal((await publish({ kind: 'user', user: 'nobody' }, 'lost', T0 + 5)).recipients, 0, 'unknown user: 0')

    t.same((await read(a.id, 0, T0 + 6)).data, ['all', 'room', 'to-u'])
    t.same((await read(b.id, 0, T0 + 6)).data, ['all', 'room'])
    t.same((await read(c.id, 0, T0 + 6)).data, ['all', 'to-c'])
  })

  t.test('the stored JSON is returned as published', async (t) => {
    const { store, session, T0 } = await setup(t)
    const a = await session(T0, { rooms: ['r'], user: 'u' })
    const json = JSON.stringify({ id: 'm-1', type: 'message', from: null, room: null, to: a.id, data: { ü: '€ \u2028 "q"', n: [1, 2] }, ts: T0 })
    t.equal(await store.publish({ id: 'm-1', ts: T0, json, target: { kind: 'session', id: a.id } }, T0), 1)
    const others = ['all', 'r', 'u'].map((k, i) => JSON.stringify({ id: `m-${i + 2}`, k, data: '\u0000\ud83d\ude00' }))
    t.equal(await store.publish({ id: 'm-2', ts: T0, json: others[0], target: { kind: 'all' } }, T0), 1)
    t.equal(await store.publish({ id: 'm-3', ts: T0, json: others[1], target: { kind: 'room', room: 'r' } }, T0), 1)
    t.equal(await store.publish({ id: 'm-4', ts: T0, json: others[2], target: { kind: 'user', user: 'u' } }, T0), 1)
    const r = await store.read(a.id, 0, ALL, T0 + 1)
    t.same(r !== null && r !== 'bad-cursor' ? r.messages : r, [json, ...others], 'byte-for-byte the same strings, from every log')
  })

  t.test('read after the cursor; an old cursor gets the same messages again; a new one acknowledges', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t)
    const a = await session(T0)
    const first = await read(a.id, 0, T0)
    t.same(first.messages, [], 'nothing yet')
    t.equal(first.cursor, 0, 'a fresh session answers cursor 0 with cursor 0')
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
    t.equal((await store.stats()).queued, 0, 'a session inbox is freed as it is acknowledged')
  })

  t.test('cursor null reads after the last delivered message', async (t) => {
    const { session, publish, read, T0 } = await setup(t)
    const a = await session(T0)
    await publish({ kind: 'session', id: a.id }, 1, T0 + 1)
    await publish({ kind: 'all' }, 2, T0 + 2)
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
    t.equal(await store.read(a.id, 1, ALL, T0), 'bad-cursor', 'a fresh session has delivered nothing')
    t.same(await store.poll(a.tokenHash, 1, 1000, ALL, T0), { ok: false, reason: 'bad-cursor' }, 'poll says so too')
    await publish({ kind: 'session', id: a.id }, 1, T0 + 1)
    await publish({ kind: 'all' }, 2, T0 + 2)
    t.equal(await store.read(a.id, 1, ALL, T0 + 3), 'bad-cursor', 'queued but undelivered messages do not make a cursor valid')
    const r = await read(a.id, 0, T0 + 4, 1)
    t.same(r.data, [1])
    t.equal(await store.read(a.id, r.cursor + 1, ALL, T0 + 5), 'bad-cursor', 'one past the delivered one')
    t.same((await read(a.id, r.cursor, T0 + 6)).data, [2], 'the issued cursor is fine, and the store state is intact')
    t.equal(await store.read('no-such-session', 0, ALL, T0 + 7), null)
    t.equal(await store.read('no-such-session', null, ALL, T0 + 7), null)
  })

  t.test('messages arrive in acceptance order in every mailbox, across its logs', async (t) => {
    const { session, publish, read, T0 } = await setup(t, { maxMailboxMessages: 100 })
    const a = await session(T0, { rooms: ['r'], user: 'u' })
    const b = await session(T0, { rooms: ['r'] })
    const expectA: number[] = []
    const expectB: number[] = []
    for (let i = 0; i < 50; i++) {
      const kind = i % 5
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
      } else if (kind === 3) {
        await publish({ kind: 'user', user: 'u' }, i, T0 + i)
        expectA.push(i)
      } else {
        await publish({ kind: 'session', id: b.id }, i, T0 + i)
        expectB.push(i)
      }
    }
    t.same((await read(a.id, 0, T0 + 100)).data, expectA)
    t.same((await read(b.id, 0, T0 + 100)).data, expectB)
    // In pages too, and cursors only grow.
    const got: unknown[] = []
    let cursor = 0
    for (let i = 0; i < 20; i++) {
      const r = await read(a.id, cursor, T0 + 101, 3)
      if (r.messages.length === 0) break
      t.ok(r.cursor > cursor, 'each page ends at a later cursor')
      got.push(...r.data)
      cursor = r.cursor
    }
    t.same(got, expectA, 'read 3 at a time: the same order')
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

  t.test('maxBytes: at most maxBytes of messages, a single larger message alone', async (t) => {
    const { session, publish, read, T0 } = await setup(t)
    const a = await session(T0, { rooms: ['r'] })
    const sizes: number[] = []
    const sent = async (data: number, pad: number): Promise<void> => {
      const target = data % 2 === 0 ? { kind: 'all' as const } : { kind: 'room' as const, room: 'r' }
      sizes.push(Buffer.byteLength((await publish(target, data, T0 + data, pad)).json))
    }
    for (let i = 1; i <= 4; i++) await sent(i, 100)
    await sent(5, 5000)
    await sent(6, 100)
    const small = Math.max(...sizes.slice(0, 4))
    const budget = 2 * small + 10
    t.ok(sizes[0] + sizes[1] + sizes[2] > budget && sizes[4] > budget, 'the sizes make the test meaningful')

    const r1 = await read(a.id, 0, T0 + 10, 100, budget)
    t.same(r1.data, [1, 2], 'two small ones fit, not three')
    const r2 = await read(a.id, r1.cursor, T0 + 11, 100, budget)
    t.same(r2.data, [3, 4], 'the large one does not fit after two small ones')
    const r3 = await read(a.id, r2.cursor, T0 + 12, 100, budget)
    t.same(r3.data, [5], 'a single message larger than maxBytes goes alone')
    const lost = await read(a.id, r2.cursor, T0 + 13, 100, budget)
    t.same(lost.data, [5], 'and again when its response was lost')
    const r4 = await read(a.id, r3.cursor, T0 + 14, 100, budget)
    t.same(r4.data, [6])
    t.same((await read(a.id, 0, T0 + 15, 100, 1)).data, [6],
      'an older cursor: what the latest cursor sent acknowledged stays so; maxBytes 1: one message per read')
  })

  t.test('limit 0 (HEAD /poll) acknowledges, delivers nothing and keeps missed for the next read', async (t) => {
    const { store, session, publish, read, poll, T0 } = await setup(t, { maxMailboxMessages: 2 })
    const a = await session(T0, { rooms: ['r'] })
    await publish({ kind: 'session', id: a.id }, 1, T0 + 1)
    await publish({ kind: 'room', room: 'r' }, 2, T0 + 2)
    const r1 = await read(a.id, 0, T0 + 3)
    t.same(r1.data, [1, 2])
    const delivered = (await store.stats()).delivered

    await publish({ kind: 'all' }, 3, T0 + 4)
    await publish({ kind: 'session', id: a.id }, 4, T0 + 5)
    await publish({ kind: 'room', room: 'r' }, 5, T0 + 6)
    const head = await store.read(a.id, r1.cursor, { limit: 0, maxBytes: ALL.maxBytes }, T0 + 7)
    t.same(head !== null && head !== 'bad-cursor' ? [head.messages, head.cursor, head.missed] : head, [[], r1.cursor, 0],
      'no messages, the request cursor, nothing reported')
    t.equal((await store.stats()).delivered, delivered, 'nothing was delivered by it')
    const r2 = await read(a.id, 0, T0 + 8)
    t.same(r2.data, [4, 5], 'it acknowledged 1 and 2: an older cursor does not bring them back')
    t.equal(r2.missed, 1, 'the overflow of 3 is reported by the next read that returns a result')
    t.equal((await read(a.id, 0, T0 + 9)).missed, 0, 'once')

    const b = await session(T0 + 10)
    for (let i = 1; i <= 3; i++) await publish({ kind: 'session', id: b.id }, i, T0 + 10 + i)
    const hb = await poll(b, 0, T0 + 20, 25_000, 0)
    t.same([hb.read.messages, hb.read.missed, hb.seq], [[], 0, 0], 'poll with limit 0: nothing delivered, never held')
    const rb = await read(b.id, null, T0 + 21)
    t.same([rb.data, rb.missed], [[2, 3], 1], 'then a read gets the messages and the missed count')
  })

  t.test('a lost response is read again, the same, across several logs', async (t) => {
    const { session, publish, read, T0 } = await setup(t)
    const a = await session(T0, { rooms: ['r', 'q'], user: 'u' })
    const targets = [{ kind: 'all' as const }, { kind: 'room' as const, room: 'r' }, { kind: 'session' as const, id: a.id },
      { kind: 'user' as const, user: 'u' }, { kind: 'room' as const, room: 'q' }]
    for (let i = 0; i < 10; i++) await publish(targets[i % targets.length], i, T0 + i)
    const r1 = await read(a.id, 0, T0 + 20, 4)
    t.same(r1.data, [0, 1, 2, 3])
    const lost = await read(a.id, 0, T0 + 21, 4)
    t.same([lost.data, lost.cursor], [r1.data, r1.cursor], 'the same messages and cursor')
    const r2 = await read(a.id, r1.cursor, T0 + 22, 4)
    t.same(r2.data, [4, 5, 6, 7])
    const lost2 = await read(a.id, r1.cursor, T0 + 23, 10)
    t.same(lost2.data, [4, 5, 6, 7, 8, 9], 'with a larger limit: the unacknowledged ones, then the rest')
    const r3 = await read(a.id, lost2.cursor, T0 + 24)
    t.same([r3.data, r3.cursor], [[], lost2.cursor])
  })

  t.test('a long stream through several logs: every message once, in order, none missed', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, { maxMailboxMessages: 100 })
    const a = await session(T0, { rooms: ['r'] })
    let cursor = 0
    const got: number[] = []
    let now = T0
    const n = 1200
    for (let i = 0; i < n; i++) {
      await publish(i % 3 === 0 ? { kind: 'all' } : i % 3 === 1 ? { kind: 'session', id: a.id } : { kind: 'room', room: 'r' }, i, ++now)
      if (i % 37 === 36) {
        // Read in small batches, acknowledging as we go, sometimes resending the old cursor.
        const r = await read(a.id, cursor, ++now, 50)
        const again = await read(a.id, cursor, now, 50)
        t.same(again.messages, r.messages, 'a resend returns the same batch')
        for (const m of r.messages) got.push(decode(m) as number)
        cursor = r.cursor
        if (r.missed !== 0) t.fail(`missed ${r.missed} at ${i}`)
      }
    }
    for (let i = 0; i < n; i++) {
      const r = await read(a.id, cursor, ++now, 20)
      if (r.messages.length === 0) break
      for (const m of r.messages) got.push(decode(m) as number)
      cursor = r.cursor
    }
    t.equal(got.length, n, 'every message, none missed')
    t.ok(got.every((v, i) => v === i), 'in order')
    const st = await store.stats()
    t.same([st.delivered, st.dropped], [n, 0])
  })
}
