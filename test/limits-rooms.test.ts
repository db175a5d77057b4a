/**
 * PROTOCOL.md, "Limits" and "Presence": member lists in pages (`limit`, `after`, `next`, in
 * join order), and no `join`/`leave` notices in rooms above `presenceLimit` members (counted
 * after a join, before a leave), for every way in and out (register, the routes, the server's
 * join/leave, DELETE /session and expiry).
 */
import t from 'tap'
import type { Member } from '../types/index.js'
import { assertError, endSession, join, leave, members, register, reader, type Session } from './helpers/http.js'
import { start } from './helpers/server.js'
import { waitFor } from './helpers/wait.js'

t.test('member pages: at most the page size, in join order, `after` the previous `next`, null at the end', async (t) => {
  const s = await start(t, { membersPageSize: 3 })
  const joined: Session[] = []
  for (let i = 0; i < 7; i++) joined.push(await register(s, { rooms: ['r'], profile: { n: i } }))
  const me = joined[0]
  const pages: Member[][] = []
  let after: string | null = null
  for (let i = 0; i < 10; i++) {
    const res = await s.request({ path: '/rooms/r/members' + (after === null ? '' : `?after=${after}`), token: me.token })
    t.equal(res.status, 200)
    pages.push(res.body.members)
    after = res.body.next
    if (after === null) break
    t.equal(typeof after, 'string', 'next is a string while there may be more')
  }
  t.same(pages.map((p) => p.length), [3, 3, 1], 'pages of at most 3')
  t.same(pages.flat().map((m) => m.id), joined.map((x) => x.id), 'every member once, in join order')

  const two = await s.request({ path: '/rooms/r/members?limit=2', token: me.token })
  t.same(two.body.members.map((m: Member) => m.id), joined.slice(0, 2).map((x) => x.id), 'limit=2')
  assertError(t, await s.request({ path: '/rooms/r/members?limit=4', token: me.token }), 400, 'FST_ERR_VALIDATION', 'limit above the page size')
  for (const limit of ['0', '-1', '1.5', 'x', '']) {
    assertError(t, await s.request({ path: `/rooms/r/members?limit=${limit}`, token: me.token }), 400, undefined, `limit=${limit}`)
  }
  for (const bad of ['x', '-1', '1.5', '01', '9'.repeat(17), '%20']) {
    assertError(t, await s.request({ path: `/rooms/r/members?after=${bad}`, token: me.token }), 400, 'LONGPOLL_BAD_CURSOR', `after=${bad}`)
  }

  // A member who leaves between pages is not listed; nobody is listed twice.
  const first = await s.request({ path: '/rooms/r/members?limit=3', token: me.token })
  t.equal((await leave(s, joined[4].token, 'r')).status, 204)
  const rest = await s.request({ path: `/rooms/r/members?after=${first.body.next as string}`, token: me.token })
  t.same([...first.body.members, ...rest.body.members].map((m: Member) => m.id), joined.filter((_, i) => i !== 4).map((x) => x.id))

  // The decorator gets every page.
  t.equal((await s.app.longPoll.members('r')).length, 6, 'members() reads every page')
})

t.test('member pages: 100 by default', async (t) => {
  const s = await start(t, { registerRateLimit: false }) // 101 registrations on purpose
  const all: Session[] = []
  for (let i = 0; i < 101; i++) all.push(await register(s, { rooms: ['big'] }))
  const res = await members(s, all[0].token, 'big')
  t.equal(res.body.members.length, 100, 'the first page has 100')
  t.equal(typeof res.body.next, 'string')
  const next = await s.request({ path: `/rooms/big/members?after=${res.body.next as string}`, token: all[0].token })
  t.same(next.body.members.map((m: Member) => m.id), [all[100].id])
  t.equal(next.body.next, null)
  assertError(t, await s.request({ path: '/rooms/big/members?limit=101', token: all[0].token }), 400, undefined, 'limit=101')
})

t.test('presence: no join or leave notices in a room of more than presenceLimit members, on every path', async (t) => {
  const s = await start(t, { presenceLimit: 3 })
  const watcher = await register(s, { rooms: ['r'] }) // 1 member
  const read = reader(s, watcher)
  const notices = async (): Promise<string[]> => (await read()).map((m) => `${m.type}:${String(m.from) === watcher.id ? 'w' : 'x'}`)
  t.same(await notices(), ['join:w'], 'size 1: announced')
  await register(s, { rooms: ['r'] }) // 2
  const c = await register(s)
  t.equal((await join(s, c.token, 'r')).status, 204) // 3
  t.same(await notices(), ['join:x', 'join:x'], 'sizes 2 and 3: announced')
  const d = await register(s, { rooms: ['r'] }) // 4
  const e = await register(s)
  t.equal(await s.app.longPoll.join(e.id, 'r'), true) // 5
  t.same(await notices(), [], 'sizes 4 and 5 (above presenceLimit 3): no join notices, whichever path')
  t.equal((await leave(s, d.token, 'r')).status, 204) // 5 before: silent
  t.equal(await s.app.longPoll.leave(e.id, 'r'), true) // 4 before: silent
  t.same(await notices(), [], 'leaving a room of 5, then 4 members: no leave notices')
  t.equal((await endSession(s, c.token)).status, 204) // 3 before: announced
  t.same(await notices(), ['leave:x'], 'leaving a room of 3: announced')

  // Expiry: three members that never poll expire together; the watcher keeps its session alive.
  // Removed one by one, the room has 4, 3, then 2 members before each: only the last is announced.
  const x = await start(t, { presenceLimit: 2, sessionTtl: 800, sweepInterval: 50 })
  const w = await register(x, { rooms: ['r'] })
  const readW = reader(x, w)
  for (let i = 0; i < 3; i++) await register(x, { rooms: ['r'] })
  t.same((await readW()).map((m) => m.type), ['join', 'join'], 'joins at sizes 1 and 2 announced, 3 and 4 not')
  const got: string[] = []
  await waitFor(async () => {
    for (const m of await readW()) got.push(m.type)
    return (await x.app.longPoll.stats()).sessions === 1
  }, 'the three to expire', 10_000, 100)
  for (const m of await readW()) got.push(m.type)
  t.same(got, ['leave'], 'one leave notice: the expiry that left the room at presenceLimit')
})

t.test('presenceLimit 0: no presence at all; the default is 100', async (t) => {
  const s = await start(t, { presenceLimit: 0 })
  const a = await register(s, { rooms: ['r'] })
  await register(s, { rooms: ['r'] })
  t.same(await reader(s, a)(), [], 'presenceLimit 0: not even one\'s own join')

  const d = await start(t, { registerRateLimit: false }) // 101 registrations on purpose
  const first = await register(d, { rooms: ['r'] })
  const readFirst = reader(d, first)
  for (let i = 1; i < 100; i++) await register(d, { rooms: ['r'] })
  t.equal((await readFirst()).length, 100, 'joins up to 100 members announced')
  await register(d, { rooms: ['r'] })
  t.same(await readFirst(), [], 'the 101st is not')
})
