/**
 * PROTOCOL.md, room history: `GET /rooms/:room/history?limit&before` (members only; the most
 * recent kept messages oldest first, `next` pages further back), `POST /rooms/:room/join?history=N`
 * (up to N messages accepted before the join, then everything after through the poll: nothing
 * missed, nothing twice), the `history` option (off by default: always empty), its count bound,
 * and `app.longPoll.history`.
 */
import t from 'tap'
import type { Message } from '../types/index.js'
import { assertError, join, register, reader, send } from './helpers/http.js'
import { start } from './helpers/server.js'

const texts = (ms: Message[]): unknown[] => ms.filter((m) => m.type === 'message').map((m) => m.data)

t.test('history pages: most recent first page, oldest first within it, next pages back to the start', async (t) => {
  const s = await start(t, { rateLimit: false, history: { maxMessages: 100, maxAge: 60_000 }, historyPageSize: 4, presenceLimit: 0 })
  const a = await register(s, { rooms: ['r'] })
  for (let i = 0; i < 10; i++) t.equal((await send(s, a.token, { data: i, room: 'r' })).status, 202)
  const pages: unknown[][] = []
  let before: string | null = null
  for (let i = 0; i < 10; i++) {
    const res = await s.request({ path: '/rooms/r/history' + (before === null ? '' : `?before=${before}`), token: a.token })
    t.equal(res.status, 200)
    t.match(res.headers['content-type'], /^application\/json/)
    t.same(Object.keys(res.body).sort(), ['messages', 'next'])
    pages.push(texts(res.body.messages))
    before = res.body.next
    if (before === null) break
  }
  t.same(pages, [[6, 7, 8, 9], [2, 3, 4, 5], [0, 1]], 'pages of 4, newest first, each oldest first')
  const two = await s.request({ path: '/rooms/r/history?limit=2', token: a.token })
  t.same(texts(two.body.messages), [8, 9], 'limit=2')
  t.match(two.body.messages[0], { type: 'message', from: a.id, room: 'r', data: 8 }, 'whole messages')
  assertError(t, await s.request({ path: '/rooms/r/history?limit=5', token: a.token }), 400, 'FST_ERR_VALIDATION', 'limit above the page size')
  assertError(t, await s.request({ path: '/rooms/r/history?limit=0', token: a.token }), 400, undefined, 'limit=0')
  assertError(t, await s.request({ path: '/rooms/r/history?before=x', token: a.token }), 400, 'LONGPOLL_BAD_CURSOR', 'a malformed before')
  const b = await register(s)
  assertError(t, await s.request({ path: '/rooms/r/history', token: b.token }), 403, 'LONGPOLL_NOT_A_MEMBER', 'not a member')
  assertError(t, await s.request({ path: '/rooms/r/history', token: 'nope' }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'bad token')

  const page = await s.app.longPoll.history('r', { limit: 3 })
  t.same(texts(page.messages), [7, 8, 9], 'app.longPoll.history')
  const back = await s.app.longPoll.history('r', { before: page.next as string })
  t.same(texts(back.messages), [3, 4, 5, 6], 'paging back with the decorator (its default limit is the page size)')
  await t.rejects(s.app.longPoll.history('r', { before: 'x' }), TypeError)
})

t.test('join with history: the messages before the join, then everything after through the poll', async (t) => {
  const s = await start(t, { rateLimit: false, history: { maxMessages: 100, maxAge: 60_000 } })
  const a = await register(s, { rooms: ['r'] })
  for (let i = 0; i < 5; i++) await send(s, a.token, { data: i, room: 'r' })
  const b = await register(s)
  const readB = reader(s, b)
  const res = await s.request({ method: 'POST', path: '/rooms/r/join?history=3', token: b.token })
  t.equal(res.status, 200, 'join with history: 200')
  t.same(texts(res.body.messages), [2, 3, 4], 'the 3 most recent messages before the join')
  t.equal(typeof res.body.next, 'string', 'and a cursor to page further back')
  await send(s, a.token, { data: 5, room: 'r' })
  t.same((await readB()).map((m) => m.type === 'message' ? m.data : m.type), ['join', 5], 'the poll has its join and what came after, nothing twice')
  const older = await s.request({ path: `/rooms/r/history?before=${res.body.next as string}`, token: b.token })
  t.same(texts(older.body.messages), [0, 1], 'and the history before it')

  const again = await s.request({ method: 'POST', path: '/rooms/r/join?history=2', token: b.token })
  t.equal(again.status, 200, 'a member joining again with history: the history, no new join')
  t.same(again.body.messages.map((m: Message) => m.type === 'message' ? m.data : m.type), ['join', 5], 'the history holds join notices too')
  t.same(await readB(), [], 'nothing announced')
  t.equal((await s.request({ method: 'POST', path: '/rooms/q/join?history=0', token: b.token })).status, 204, 'history=0: 204')
  for (const bad of ['51', '-1', 'x', '1.5']) {
    assertError(t, await s.request({ method: 'POST', path: `/rooms/z/join?history=${bad}`, token: b.token }), 400, undefined, `history=${bad}`)
  }
  t.same(await s.app.longPoll.members('z'), [], 'a refused join did not join')
})

t.test('history off (the default): always empty; the count bound when on', async (t) => {
  const s = await start(t, { rateLimit: false })
  const a = await register(s, { rooms: ['r'] })
  await send(s, a.token, { data: 1, room: 'r' })
  const res = await s.request({ path: '/rooms/r/history', token: a.token })
  t.equal(res.status, 200)
  t.same(res.body, { messages: [], next: null }, 'history off: empty')
  const b = await register(s)
  const joined = await s.request({ method: 'POST', path: '/rooms/r/join?history=5', token: b.token })
  t.same([joined.status, joined.body], [200, { messages: [], next: null }], 'join with history, history off: an empty list')
  t.same(await s.app.longPoll.history('r'), { messages: [], next: null })

  const bounded = await start(t, { rateLimit: false, presenceLimit: 0, history: { maxMessages: 3, maxAge: 60_000 } })
  const c = await register(bounded, { rooms: ['r'] })
  for (let i = 0; i < 6; i++) await send(bounded, c.token, { data: i, room: 'r' })
  const kept = await bounded.request({ path: '/rooms/r/history', token: c.token })
  t.same(texts(kept.body.messages), [3, 4, 5], 'maxMessages: the last 3 kept')
  t.equal(kept.body.next, null, 'nothing older')
  t.equal((await join(bounded, c.token, 'r')).status, 204)
})
