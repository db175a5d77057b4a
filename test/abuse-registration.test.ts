/**
 * Abuse scenarios of issue 13, registration (default options, one instance on 127.0.0.1): a
 * client (any web page can make its visitors do it: a body-less POST needs no CORS preflight)
 * floods `POST /register`, and one registration asks for 100 rooms with a 1 KiB profile. The
 * flood is cut at the per-address limit with 429 and retry-after, real users from other
 * addresses still register, `maxSessions` is never approached; the big registration is refused
 * before anything is queued.
 */
import t from 'tap'
import { assertError, httpCall, type Reply } from './helpers/http.js'
import { start } from './helpers/server.js'

t.test('a registration flood from one address: 30 sessions, then 429 with retry-after; other addresses are served', async (t) => {
  const FLOOD = 150
  const s = await start(t, {}, { listen: true })
  const port = s.port as number
  const started = Date.now()
  const replies: Reply[] = await Promise.all(Array.from({ length: FLOOD }, () => httpCall(port, s.prefix, { method: 'POST', path: '/register' })))
  const created = replies.filter((r) => r.status === 201).length
  const limited = replies.filter((r) => r.status === 429)
  t.equal(created, 30, `${created} of ${FLOOD} created (the limit is 30 per 60 s)`)
  t.equal(limited.length, FLOOD - 30, 'the rest refused with 429')
  t.ok(limited.every((r) => r.body?.code === 'LONGPOLL_RATE_LIMITED' && /^[1-9][0-9]*$/.test(String(r.headers['retry-after']))), 'LONGPOLL_RATE_LIMITED with retry-after in whole seconds')
  assertError(t, limited[0], 429, 'LONGPOLL_RATE_LIMITED', 'a refused registration')
  t.equal((await s.app.longPoll.stats()).sessions, 30, 'the flood holds 30 sessions, far from maxSessions')
  t.ok(Date.now() - started < 30_000, 'bounded in time')

  // Real users elsewhere are not locked out (inject sets their address).
  for (let i = 0; i < 5; i++) {
    const res = await s.app.inject({ method: 'POST', url: '/chat/register', remoteAddress: `192.0.2.${i + 1}` })
    t.equal(res.statusCode, 201, `a user at 192.0.2.${i + 1} registers`)
  }
})

t.test('one registration asking for 100 rooms with a 1 KiB profile: refused before anything is queued', async (t) => {
  const s = await start(t, {})
  const watcher = await s.request({ method: 'POST', path: '/register', json: { rooms: ['room-0'] } })
  const before = await s.app.longPoll.stats()
  const profile = { name: 'x'.repeat(1000) }
  const res = await s.request({ method: 'POST', path: '/register', json: { rooms: Array.from({ length: 100 }, (_, i) => `room-${i}`), profile } })
  assertError(t, res, 403, 'LONGPOLL_TOO_MANY_ROOMS', '100 rooms at register (the joins limit is 20)')
  const after = await s.app.longPoll.stats()
  t.equal(after.sessions, before.sessions, 'no session')
  t.equal(after.queued, before.queued, 'no join message queued')
  const p = await s.request({ path: '/poll?cursor=0&wait=0', token: watcher.body.token })
  t.same(p.body.messages.map((m: { type: string, from: string }) => [m.type, m.from]), [['join', watcher.body.id]], 'the watcher of room-0 got nothing but its own join')

  // The most a registration can queue: 20 rooms (the joins limit), each one join notice of at most 1 KiB.
  const max = await s.request({ method: 'POST', path: '/register', json: { rooms: Array.from({ length: 20 }, (_, i) => `room-${i}`), profile } })
  t.equal(max.status, 201)
  t.equal((await s.app.longPoll.stats()).queued - after.queued, 20, '20 rooms: 20 join messages, once each')
})
