/** Store contract v2: room history (pages, limits, join with history). */
import type { Test } from 'tap'
import type { MailboxStore, Page } from '../../lib/stores/store.js'
import { decode, type Setup } from './helpers.js'

const data = (page: Page<string>): unknown[] => page.items.map(decode)

/** The data of every history page from the newest back, following `next` (at most 100 pages). */
async function walk (store: MailboxStore, room: string, limit: number, now: number): Promise<unknown[][]> {
  const pages: unknown[][] = []
  let before: string | null = null
  for (let i = 0; i < 100; i++) {
    const page = await store.history(room, before, limit, now)
    pages.push(data(page))
    if (page.next === null) break
    before = page.next
  }
  return pages
}

export function historyCases (t: Test, setup: Setup): void {
  t.test('history off: pages are empty, join with history returns an empty page', async (t) => {
    const { store, session, publish, T0 } = await setup(t)
    const a = await session(T0, { rooms: ['r'] })
    for (let i = 1; i <= 3; i++) await publish({ kind: 'room', room: 'r' }, i, T0 + i)
    t.same(await store.history('r', null, 50, T0 + 5), { items: [], next: null })
    const b = await session(T0 + 6)
    t.same(await store.join(b.id, 'r', T0 + 6, 10), { result: 'joined', size: 2, history: { items: [], next: null } })
    const c = await session(T0 + 7)
    t.same(await store.join(c.id, 'r', T0 + 7), { result: 'joined', size: 3 }, 'without history asked: no history field')
    t.equal((await publish({ kind: 'room', room: 'empty' }, 'x', T0 + 8)).recipients, 0)
    t.same(await store.history('empty', null, 50, T0 + 8), { items: [], next: null })
    t.equal(a.user, null)
  })

  t.test('history pages: the newest page first, each oldest first, next until null', async (t) => {
    const { store, session, publish, T0 } = await setup(t, { history: { maxMessages: 20, maxAge: 100_000 } })
    const a = await session(T0, { rooms: ['r'], user: 'u' })
    for (let i = 1; i <= 12; i++) {
      await publish({ kind: 'room', room: 'r' }, i, T0 + i)
      // Other logs in between are not the room's history.
      await publish(i % 2 === 0 ? { kind: 'all' } : { kind: 'session', id: a.id }, `other-${i}`, T0 + i)
    }
    const p1 = await store.history('r', null, 5, T0 + 20)
    t.same(data(p1), [8, 9, 10, 11, 12], 'the most recent, oldest first')
    t.type(p1.next, 'string')
    const p2 = await store.history('r', p1.next, 5, T0 + 20)
    t.same(data(p2), [3, 4, 5, 6, 7], 'before the oldest of the previous page')
    const p3 = await store.history('r', p2.next, 5, T0 + 20)
    t.same(p3, { items: p3.items, next: null }, 'nothing older: next is null')
    t.same(data(p3), [1, 2])
    t.same(await walk(store, 'r', 12, T0 + 20), [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]], 'one page when it fits')
    t.same(await walk(store, 'r', 50, T0 + 20), [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]])
    t.same(data(await store.history('r', p1.next, 5, T0 + 21)), [3, 4, 5, 6, 7], 'a page cursor can be used again')
    t.same(await store.history('nobody', null, 5, T0 + 20), { items: [], next: null }, 'an unknown room has none')
  })

  t.test('history limits: count and age, kept beyond messageTtl, but expired for mailboxes', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, {
      messageTtl: 10_000, maxMailboxMessages: 10, history: { maxMessages: 5, maxAge: 50_000 }
    })
    const a = await session(T0, { rooms: ['r'] })
    for (let i = 0; i < 8; i++) await publish({ kind: 'room', room: 'r' }, i, T0 + i * 1000)
    t.same(await walk(store, 'r', 50, T0 + 8000), [[3, 4, 5, 6, 7]], 'the last maxMessages (mailboxes may keep more)')
    t.same(await walk(store, 'r', 2, T0 + 8000), [[6, 7], [4, 5], [3]])
    await store.sweep(T0 + 30_000, 100)
    t.same(await walk(store, 'r', 50, T0 + 30_000), [[3, 4, 5, 6, 7]], 'past messageTtl: history still has them')
    const r = await read(a.id, 0, T0 + 30_000)
    t.same([r.data, r.missed], [[], 8], 'a member\'s mailbox does not: all eight expired for it')
    t.same(await walk(store, 'r', 50, T0 + 53_500), [[4, 5, 6, 7]], 'older than maxAge: gone from history')
    await store.sweep(T0 + 60_000, 100)
    t.same(await walk(store, 'r', 50, T0 + 60_000), [[]])
    t.equal((await store.stats()).queued, 0, 'and freed')
  })

  t.test('a room with no members keeps its history', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, { history: { maxMessages: 10, maxAge: 100_000 } })
    t.equal((await publish({ kind: 'room', room: 'news' }, 'n1', T0 + 1)).recipients, 0, 'nobody to deliver to')
    const a = await session(T0 + 2, { rooms: ['news'] })
    await publish({ kind: 'room', room: 'news' }, 'n2', T0 + 3)
    t.same(await store.leave(a.id, 'news', T0 + 4), { left: true, size: 0 })
    t.equal((await publish({ kind: 'room', room: 'news' }, 'n3', T0 + 5)).recipients, 0)
    t.same(await walk(store, 'news', 50, T0 + 6), [['n1', 'n2', 'n3']])
    t.same((await read(a.id, 0, T0 + 7)).data, ['n2'], 'the former member got only what it was there for')
    const b = await session(T0 + 8)
    const joined = await store.join(b.id, 'news', T0 + 8, 2)
    t.same(joined.result === 'joined' && joined.history !== undefined ? data(joined.history) : joined, ['n2', 'n3'])
    t.same((await read(b.id, 0, T0 + 9)).data, [], 'history is not mail')
  })

  t.test('join with history: the recent part, no gap or overlap with the live stream', async (t) => {
    const { store, session, publish, read, T0 } = await setup(t, { history: { maxMessages: 50, maxAge: 100_000 } })
    await session(T0, { rooms: ['r'] })
    for (let i = 1; i <= 6; i++) await publish({ kind: 'room', room: 'r' }, i, T0 + i)
    const a = await session(T0 + 10)
    const joined = await store.join(a.id, 'r', T0 + 10, 4)
    t.equal(joined.result, 'joined')
    const h = joined.result === 'joined' ? joined.history : undefined
    t.same(h && data(h), [3, 4, 5, 6], 'the last 4 accepted before the join, oldest first')
    t.type(h?.next, 'string', 'older ones remain')
    t.same(data(await store.history('r', h?.next ?? null, 50, T0 + 10)), [1, 2], 'its next pages on as the history route does')
    await publish({ kind: 'room', room: 'r' }, 7, T0 + 11)
    t.same((await read(a.id, 0, T0 + 12)).data, [7], 'what follows the join comes through the mailbox')
    const already = await store.join(a.id, 'r', T0 + 13, 2)
    t.same(already.result === 'already' && already.history !== undefined ? [already.size, data(already.history)] : already,
      [2, [6, 7]], 'joining again: already, with the recent history')

    // Concurrent with publishes: each message is in the history or in the mailbox, exactly once.
    for (let i = 0; i < 10; i++) {
      const s = await session(T0 + 20 + i)
      const [j] = await Promise.all([
        store.join(s.id, 'r', T0 + 20 + i, 50),
        publish({ kind: 'room', room: 'r' }, `c${i}`, T0 + 20 + i)
      ])
      const hist = j.result === 'joined' && j.history !== undefined ? data(j.history) : []
      const mail = (await read(s.id, 0, T0 + 20 + i)).data
      const both = [...hist, ...mail]
      t.equal(both.filter((d) => d === `c${i}`).length, 1, `round ${i}: c${i} in the history or in the mailbox, once`)
      t.same(both.slice(-1), [`c${i}`], 'and it is the newest')
    }
  })
}
