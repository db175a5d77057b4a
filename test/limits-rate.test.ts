/**
 * PROTOCOL.md, "Limits": the rate limits of version 2, each counted in the store in the same call
 * as the token check: registrations per client address (`request.ip`, or the app's key), joins
 * and leaves per session (rooms asked for at registration count as joins), member-list and
 * history pages per session. Each refusal is 429 LONGPOLL_RATE_LIMITED with `retry-after` in
 * whole seconds (at least 1), changes nothing, and the next window allows again; each limit
 * takes `false`.
 */
import t from 'tap'
import { assertError, join, leave, members, register, reader, type Reply } from './helpers/http.js'
import { start } from './helpers/server.js'
import { sleep } from './helpers/wait.js'

function limited (tt: Parameters<typeof assertError>[0], res: Reply, what: string, maxSeconds: number): void {
  assertError(tt, res, 429, 'LONGPOLL_RATE_LIMITED', what)
  const seconds = Number(res.headers['retry-after'])
  tt.ok(Number.isInteger(seconds) && seconds >= 1 && seconds <= maxSeconds, `${what}: retry-after ${String(res.headers['retry-after'])} whole seconds, 1 to ${maxSeconds}`)
}

const registerReq = (headers: Record<string, string> = {}) => ({ method: 'POST', path: '/register', headers })

t.test('registrations per address: 30 per 60 s by default; 429 with retry-after; refused ones create nothing', async (t) => {
  const s = await start(t, {})
  const statuses: number[] = []
  for (let i = 0; i < 31; i++) statuses.push((await s.request(registerReq())).status)
  t.same(statuses, [...Array(30).fill(201), 429], '30 accepted, the 31st refused')
  limited(t, await s.request(registerReq()), 'the 32nd', 60)
  t.equal((await s.app.longPoll.stats()).sessions, 30, 'no session for the refused ones')
  // Another address is not limited by this one (inject can set it).
  const other = await s.app.inject({ method: 'POST', url: '/chat/register', remoteAddress: '10.1.2.3' })
  t.equal(other.statusCode, 201, 'another address registers')
})

t.test('registrations: a short window allows again; invalid registrations are not counted', async (t) => {
  const s = await start(t, { registerRateLimit: { max: 2, timeWindow: 300 } })
  for (let i = 0; i < 5; i++) assertError(t, await s.request({ method: 'POST', path: '/register', json: { rooms: ['a b'] } }), 400, undefined, 'invalid')
  t.equal((await s.request(registerReq())).status, 201)
  t.equal((await s.request(registerReq())).status, 201)
  limited(t, await s.request(registerReq()), 'the third in the window', 1)
  await sleep(350)
  t.equal((await s.request(registerReq())).status, 201, 'the next window')
})

t.test('registrations: keyed by the app (the user from authenticate); a null key is unlimited; false turns it off', async (t) => {
  const s = await start(t, {
    authenticate: (request) => ({ user: String(request.headers['x-user'] ?? '') || null }),
    registerRateLimit: { max: 1, timeWindow: 60_000, key: (request, user) => user === 'trusted-bot' ? null : user ?? request.ip }
  })
  t.equal((await s.request(registerReq({ 'x-user': 'alice' }))).status, 201)
  limited(t, await s.request(registerReq({ 'x-user': 'alice' })), 'alice again', 60)
  t.equal((await s.request(registerReq({ 'x-user': 'bob' }))).status, 201, 'another user: another key')
  t.equal((await s.request(registerReq())).status, 201, 'anonymous: keyed by address')
  limited(t, await s.request(registerReq()), 'anonymous again', 60)
  for (let i = 0; i < 5; i++) t.equal((await s.request(registerReq({ 'x-user': 'trusted-bot' }))).status, 201, `a null key: unlimited (${i})`)

  const off = await start(t, { registerRateLimit: false })
  const statuses = new Set<number>()
  for (let i = 0; i < 40; i++) statuses.add((await off.request(registerReq())).status)
  t.same([...statuses], [201], 'registerRateLimit: false, 40 from one address')
})

t.test('joins and leaves per session: 20 per 10 s by default, 429 with retry-after, and a refused one announces nothing', async (t) => {
  const s = await start(t, {})
  const a = await register(s)
  const watcher = await register(s, { rooms: ['r'] })
  const readWatcher = reader(s, watcher)
  await readWatcher()
  const statuses: number[] = []
  for (let i = 0; i < 25; i++) statuses.push((i % 2 === 0 ? await join(s, a.token, 'r') : await leave(s, a.token, 'r')).status)
  t.same(statuses, [...Array(20).fill(204), ...Array(5).fill(429)], 'joins and leaves share the limit: 20, then 429')
  limited(t, await join(s, a.token, 'q'), 'a join', 10)
  limited(t, await leave(s, a.token, 'r'), 'a leave', 10)
  const notices = await readWatcher()
  t.equal(notices.length, 20, 'the room saw only the 20 accepted joins and leaves')
  t.same((await s.app.longPoll.members('q')), [], 'the refused join did not happen')
  const b = await register(s)
  t.equal((await join(s, b.token, 'r')).status, 204, 'another session is not limited')
})

t.test('rooms asked for at registration count as joins; more than the joins limit\'s max is 403 TOO_MANY_ROOMS', async (t) => {
  const s = await start(t, { joinRateLimit: { max: 3, timeWindow: 60_000 } })
  assertError(t, await s.request({ method: 'POST', path: '/register', json: { rooms: ['a', 'b', 'c', 'd'] } }), 403, 'LONGPOLL_TOO_MANY_ROOMS', '4 rooms, max 3')
  t.equal((await s.app.longPoll.stats()).sessions, 0, 'no session')
  const x = await register(s, { rooms: ['a', 'b', 'a'] })
  t.equal((await join(s, x.token, 'c')).status, 204, 'two rooms counted (duplicates once): one join left')
  limited(t, await join(s, x.token, 'd'), 'the fourth', 60)
  const y = await register(s, { rooms: ['a', 'b', 'c'] })
  limited(t, await leave(s, y.token, 'a'), 'three rooms at register use the whole window', 60)

  const d = await start(t, {})
  const names = Array.from({ length: 21 }, (_, i) => `room-${i}`)
  assertError(t, await d.request({ method: 'POST', path: '/register', json: { rooms: names } }), 403, 'LONGPOLL_TOO_MANY_ROOMS', 'default: 21 rooms')
  const z = await register(d, { rooms: names.slice(0, 20) })
  limited(t, await join(d, z.token, 'room-20'), 'default: 20 rooms at register, then a join', 10)

  const off = await start(t, { joinRateLimit: false })
  const w = await register(off)
  for (let i = 0; i < 30; i++) if ((await join(off, w.token, 'r')).status !== 204 || (await leave(off, w.token, 'r')).status !== 204) t.fail(`joinRateLimit: false, toggle ${i}`)
  t.pass('joinRateLimit: false, 30 toggles')
})

t.test('pages per session: members and history share 30 per 10 s by default; false turns it off', async (t) => {
  const s = await start(t, { history: { maxMessages: 10, maxAge: 60_000 } })
  const a = await register(s, { rooms: ['r'] })
  const statuses: number[] = []
  for (let i = 0; i < 32; i++) statuses.push((await s.request({ path: i % 2 === 0 ? '/rooms/r/members' : '/rooms/r/history', token: a.token })).status)
  t.same(statuses, [...Array(30).fill(200), 429, 429], '30 pages, then 429')
  limited(t, await members(s, a.token, 'r'), 'members', 10)
  limited(t, await s.request({ path: '/rooms/r/history', token: a.token }), 'history', 10)
  t.equal((await join(s, a.token, 'q')).status, 204, 'joins are another limit')

  const short = await start(t, { pageRateLimit: { max: 1, timeWindow: 300 } })
  const b = await register(short, { rooms: ['r'] })
  t.equal((await members(short, b.token, 'r')).status, 200)
  limited(t, await members(short, b.token, 'r'), 'short window', 1)
  await sleep(350)
  t.equal((await members(short, b.token, 'r')).status, 200, 'the next window')

  const off = await start(t, { pageRateLimit: false })
  const c = await register(off, { rooms: ['r'] })
  const all = new Set<number>()
  for (let i = 0; i < 40; i++) all.add((await members(off, c.token, 'r')).status)
  t.same([...all], [200], 'pageRateLimit: false, 40 pages')
})
