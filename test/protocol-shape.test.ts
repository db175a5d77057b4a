/**
 * PROTOCOL.md, general rules: the prefix, `cache-control: no-store` on every response of the
 * plugin's routes (errors included), Fastify's error shape with the protocol's codes, request
 * bodies, and `DELETE /session`.
 */
import t from 'tap'
import type { SessionEndInfo } from '../types/index.js'
import {
  register, poll, pollOk, send, join, leave, members, endSession, reader, assertError, type RequestOptions
} from './helpers/http.js'
import { start } from './helpers/server.js'

t.test('routes live under the prefix option', async (t) => {
  const s = await start(t, { prefix: '/api/v1/chat' })
  const r = await s.request({ method: 'POST', path: '/api/v1/chat/register', absolute: true })
  t.equal(r.status, 201, 'POST /api/v1/chat/register')
  t.equal((await s.request({ path: `/api/v1/chat/poll?wait=0&cursor=${r.body.cursor}`, absolute: true, token: r.body.token })).status, 200, 'GET /api/v1/chat/poll')
  t.equal((await s.request({ method: 'POST', path: '/register', absolute: true })).status, 404, 'not at the root')
  t.equal((await s.request({ method: 'POST', path: '/chat/register', absolute: true })).status, 404, 'nor under another prefix')

  const root = await start(t, { prefix: '' })
  t.equal((await root.request({ method: 'POST', path: '/register', absolute: true })).status, 201, 'an empty prefix serves at the root')
})

t.test('every response of every route carries cache-control: no-store; errors have Fastify\'s shape', async (t) => {
  const s = await start(t, { rateLimit: { max: 1, timeWindow: 60_000 }, maxMessageBytes: 10, maxProfileBytes: 10, maxSessions: 3, maxRoomsPerSession: 1 })
  const a = await register(s, { rooms: ['r'] })
  const b = await register(s)
  const cases: Array<[string, RequestOptions, number, string?]> = [
    ['register 400', { method: 'POST', path: '/register', json: { rooms: ['a b'] } }, 400],
    ['register 400 JSON', { method: 'POST', path: '/register', body: '{"rooms"', headers: { 'content-type': 'application/json' } }, 400, 'FST_ERR_CTP_INVALID_JSON_BODY'],
    ['register 403', { method: 'POST', path: '/register', json: { rooms: ['x', 'y'] } }, 403, 'LONGPOLL_TOO_MANY_ROOMS'],
    ['register 413', { method: 'POST', path: '/register', json: { profile: { name: 'a long name' } } }, 413, 'LONGPOLL_PROFILE_TOO_LARGE'],
    ['register 201', { method: 'POST', path: '/register' }, 201],
    ['register 503', { method: 'POST', path: '/register' }, 503, 'LONGPOLL_SESSIONS_FULL'],
    ['poll 200', { path: `/poll?wait=0&cursor=${a.cursor}`, token: a.token }, 200],
    ['poll 400 cursor', { path: '/poll?wait=0&cursor=nope!', token: a.token }, 400, 'LONGPOLL_BAD_CURSOR'],
    ['poll 400 wait', { path: '/poll?wait=-5', token: a.token }, 400],
    ['poll 401', { path: '/poll?wait=0', token: 'nope' }, 401, 'LONGPOLL_UNKNOWN_SESSION'],
    ['poll 401 no header', { path: '/poll?wait=0' }, 401, 'LONGPOLL_UNKNOWN_SESSION'],
    ['messages 401', { method: 'POST', path: '/messages', token: 'nope', json: { data: 1 } }, 401, 'LONGPOLL_UNKNOWN_SESSION'],
    ['messages 400 both', { method: 'POST', path: '/messages', token: a.token, json: { data: 1, room: 'r', to: b.id } }, 400],
    ['messages 400 deep', { method: 'POST', path: '/messages', token: a.token, json: { data: JSON.parse('['.repeat(33) + ']'.repeat(33)) } }, 400, 'LONGPOLL_BAD_MESSAGE'],
    ['messages 400 empty JSON', { method: 'POST', path: '/messages', token: a.token, body: '', headers: { 'content-type': 'application/json' } }, 400],
    ['messages 415', { method: 'POST', path: '/messages', token: a.token, body: 'data=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415],
    ['messages 413', { method: 'POST', path: '/messages', token: a.token, json: { data: 'x'.repeat(20) } }, 413, 'LONGPOLL_MESSAGE_TOO_LARGE'],
    ['messages 403', { method: 'POST', path: '/messages', token: a.token, json: { data: 1, room: 'q' } }, 403, 'LONGPOLL_NOT_A_MEMBER'],
    ['messages 404', { method: 'POST', path: '/messages', token: a.token, json: { data: 1, to: 'nobody' } }, 404, 'LONGPOLL_NO_SUCH_SESSION'],
    ['messages 202', { method: 'POST', path: '/messages', token: a.token, json: { data: 1 } }, 202],
    ['messages 429', { method: 'POST', path: '/messages', token: a.token, json: { data: 2 } }, 429, 'LONGPOLL_RATE_LIMITED'],
    ['join 204', { method: 'POST', path: '/rooms/q/join', token: b.token }, 204],
    ['join 400', { method: 'POST', path: '/rooms/a%20b/join', token: b.token }, 400],
    ['join 401', { method: 'POST', path: '/rooms/q/join', token: 'nope' }, 401, 'LONGPOLL_UNKNOWN_SESSION'],
    ['join 403', { method: 'POST', path: '/rooms/z/join', token: b.token }, 403, 'LONGPOLL_TOO_MANY_ROOMS'],
    ['members 200', { path: '/rooms/q/members', token: b.token }, 200],
    ['members 400', { path: '/rooms/a%20b/members', token: b.token }, 400],
    ['members 401', { path: '/rooms/q/members', token: 'nope' }, 401, 'LONGPOLL_UNKNOWN_SESSION'],
    ['members 403', { path: '/rooms/q/members', token: a.token }, 403, 'LONGPOLL_NOT_A_MEMBER'],
    ['leave 204', { method: 'POST', path: '/rooms/q/leave', token: b.token }, 204],
    ['leave 400', { method: 'POST', path: '/rooms/a%20b/leave', token: b.token }, 400],
    ['leave 401', { method: 'POST', path: '/rooms/q/leave', token: 'nope' }, 401, 'LONGPOLL_UNKNOWN_SESSION'],
    ['session 401', { method: 'DELETE', path: '/session', token: 'nope' }, 401, 'LONGPOLL_UNKNOWN_SESSION'],
    ['session 204', { method: 'DELETE', path: '/session', token: b.token }, 204]
  ]
  for (const [name, req, status, code] of cases) {
    const res = await s.request(req)
    if (status >= 400) {
      assertError(t, res, status, code, name)
    } else {
      t.equal(res.status, status, `${name}: status (${res.text.slice(0, 100)})`)
      t.match(res.headers['cache-control'], /no-store/, `${name}: cache-control: no-store`)
      if (status === 204) t.equal(res.text, '', `${name}: no body`)
      else t.match(res.headers['content-type'], /^application\/json/, `${name}: JSON`)
    }
  }
})

t.test('error bodies: statusCode matches the status, error is the reason phrase', async (t) => {
  const s = await start(t, {})
  const res = await poll(s, 'nope', { wait: 0 })
  assertError(t, res, 401, 'LONGPOLL_UNKNOWN_SESSION')
  t.equal(res.body.error, 'Unauthorized')
  t.ok(res.body.message.length > 0, 'a message')
  t.match(res.headers['content-type'], /^application\/json/)
  const a = await register(s)
  const nf = await send(s, a.token, { data: 1, to: 'x' })
  t.equal(nf.body.error, 'Not Found')
  const bad = await poll(s, a.token, { cursor: '?!', wait: 0 })
  t.equal(bad.body.error, 'Bad Request')
})

t.test('DELETE /session: 204, the token stops working, members get leave, onSessionEnd(ended) once', async (t) => {
  const ended: SessionEndInfo[] = []
  const s = await start(t, { onSessionEnd: (info) => { ended.push(info) } })
  const a = await register(s, { rooms: ['r', 'q'], profile: { name: 'Ann' } })
  const b = await register(s, { rooms: ['r'] })
  const readB = reader(s, b)
  await readB()
  t.equal((await s.app.longPoll.stats()).sessions, 2)

  const res = await endSession(s, a.token)
  t.equal(res.status, 204)
  t.equal(res.text, '')
  t.match(res.headers['cache-control'], /no-store/)

  const got = await readB()
  t.same(got.map((m) => [m.type, m.from, m.room, m.to, m.data]), [['leave', a.id, 'r', null, { name: 'Ann' }]], 'the remaining member gets leave with the profile')
  assertError(t, await poll(s, a.token, { wait: 0 }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'poll after')
  assertError(t, await send(s, a.token, { data: 1 }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'send after')
  assertError(t, await join(s, a.token, 'r'), 401, 'LONGPOLL_UNKNOWN_SESSION', 'join after')
  assertError(t, await leave(s, a.token, 'r'), 401, 'LONGPOLL_UNKNOWN_SESSION', 'leave after')
  assertError(t, await members(s, a.token, 'r'), 401, 'LONGPOLL_UNKNOWN_SESSION', 'members after')
  assertError(t, await endSession(s, a.token), 401, 'LONGPOLL_UNKNOWN_SESSION', 'DELETE again')
  assertError(t, await send(s, b.token, { data: 1, to: a.id }), 404, 'LONGPOLL_NO_SUCH_SESSION', 'its id is gone')
  t.same((await s.app.longPoll.members('r')).map((m) => m.id), [b.id], 'it left its rooms')
  t.same(await s.app.longPoll.members('q'), [])
  t.equal((await s.app.longPoll.stats()).sessions, 1)

  t.equal(ended.length, 1, 'onSessionEnd called once')
  t.match(ended[0], { id: a.id, reason: 'ended', profile: { name: 'Ann' } })
  t.same([...ended[0].rooms].sort(), ['q', 'r'])
  t.same(await readB(), [], 'one leave only')

  // Its mailbox is freed: with the logs of store v2 a room's messages are kept once, in the room's
  // log, for messageTtl whoever has read them (stats().queued counts them), so the session's own
  // part is its inbox: direct messages to it are freed when it ends.
  const c = await register(s)
  for (let i = 0; i < 3; i++) await s.app.longPoll.send(c.id, i)
  const queued = (await s.app.longPoll.stats()).queued
  t.equal((await endSession(s, c.token)).status, 204)
  t.equal((await s.app.longPoll.stats()).queued, queued - 3, 'its mailbox (the 3 direct messages of its inbox) was freed')
})

t.test('request bodies: routes without a body work without content-type; JSON with charset is JSON', async (t) => {
  const s = await start(t, { rateLimit: false })
  const a = await register(s)
  t.equal((await s.request({ method: 'POST', path: '/rooms/r/join', token: a.token })).status, 204, 'join without body or content-type')
  t.equal((await s.request({ method: 'POST', path: '/rooms/r/leave', token: a.token })).status, 204, 'leave without body or content-type')
  t.equal((await s.request({ method: 'POST', path: '/messages', token: a.token, body: '{"data":"é"}', headers: { 'content-type': 'application/json; charset=utf-8' } })).status, 202)
  const p = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.same(p.messages.filter((m) => m.type === 'message').map((m) => m.data), ['é'], 'UTF-8 body decoded')
  for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream', 'multipart/form-data; boundary=x']) {
    const res = await s.request({ method: 'POST', path: '/messages', token: a.token, body: 'data=1', headers: { 'content-type': ct } })
    t.ok(res.status === 400 || res.status === 415, `${ct}: refused with 400 or 415 (${res.status})`)
    assertError(t, res, res.status, undefined, ct)
  }
  const after = await pollOk(s, a.token, { cursor: p.cursor, wait: 0 })
  t.same(after.messages, [], 'nothing refused was delivered')
})
