/**
 * PROTOCOL.md, general rules: nothing an application hook throws is answered with a 5xx. Each
 * hook throws the odd values apps really throw (null, undefined, a string, a plain object, an
 * Error, an Error with a 4xx status): `authenticate` → 401 LONGPOLL_UNAUTHORIZED, `authorize` →
 * 403 LONGPOLL_FORBIDDEN, `onMessage` → 400 LONGPOLL_BAD_MESSAGE (its own 4xx when it has a string
 * code), `onSessionEnd` → logged, the session ends all the same, `registerRateLimit.key` →
 * logged, `request.ip` is used. Each leaves a log line; none logs the token or the header. A
 * wrong result of `authenticate` is the app's bug: 401 and an error line.
 */
import { Writable } from 'node:stream'
import t from 'tap'
import type { LongPollChatOptions } from '../types/index.js'
import { assertError, endSession, join, register, send } from './helpers/http.js'
import { start } from './helpers/server.js'
import { waitFor } from './helpers/wait.js'

const ODD: Array<[string, unknown]> = [
  ['null', null], ['undefined', undefined], ['a string', 'nope'], ['an object', { reason: 'nope' }],
  ['an Error', new Error('nope')], ['a number', 7], ['an Error with a 4xx', Object.assign(new Error('teapot'), { statusCode: 418 })]
]

interface LogLine { level: number, msg: string, [key: string]: unknown }

/** A server with a logger whose lines are kept (JSON-parsed). */
async function logged (t: Parameters<typeof start>[0], options: LongPollChatOptions) {
  const lines: LogLine[] = []
  const raw: string[] = []
  const stream = new Writable({
    write (chunk, _enc, cb) {
      for (const line of String(chunk).split('\n').filter(Boolean)) {
        raw.push(line)
        lines.push(JSON.parse(line) as LogLine)
      }
      cb()
    }
  })
  const s = await start(t, options, { fastify: { logger: { level: 'info', stream } } })
  return { s, lines, raw }
}

t.test('authenticate: a throw of any kind, or a wrong result, is 401 LONGPOLL_UNAUTHORIZED with a log line', async (t) => {
  let behave: () => unknown = () => true
  const { s, lines, raw } = await logged(t, { authenticate: () => behave() as boolean })
  for (const [what, value] of ODD) {
    behave = () => { throw value }
    const before = lines.length
    const res = await s.request({ method: 'POST', path: '/register', headers: { authorization: 'Bearer secret-header-value-1234' } })
    assertError(t, res, 401, 'LONGPOLL_UNAUTHORIZED', `throws ${what}`)
    t.ok(lines.slice(before).some((l) => /authenticate threw/.test(l.msg)), `throws ${what}: logged`)
  }
  behave = () => Promise.reject(null) // eslint-disable-line prefer-promise-reject-errors
  assertError(t, await s.request({ method: 'POST', path: '/register' }), 401, 'LONGPOLL_UNAUTHORIZED', 'rejects with null')

  const wrong: Array<[string, unknown]> = [
    ['a string', 'alice'], ['a number', 1], ['an array', ['alice']], ['a user that is not a string', { user: 5 }],
    ['an empty user', { user: '' }], ['a user of 257 characters', { user: 'u'.repeat(257) }], ['a profile that is a string', { profile: 'Ann' }],
    ['rooms that are not a list', { rooms: 'lobby' }], ['an invalid room', { rooms: ['a b'] }],
    ['a context that is not JSON', { context: { n: 10n } }], ['a circular context', (() => { const c: Record<string, unknown> = {}; c.self = c; return { context: c } })()]
  ]
  for (const [what, value] of wrong) {
    behave = () => value
    const before = lines.length
    assertError(t, await s.request({ method: 'POST', path: '/register' }), 401, 'LONGPOLL_UNAUTHORIZED', `returns ${what}`)
    t.ok(lines.slice(before).some((l) => l.level >= 50 && /wrong result/.test(l.msg)), `returns ${what}: an error line`)
  }
  behave = () => ({ user: 'u'.repeat(256), context: { ok: true } })
  t.equal((await s.request({ method: 'POST', path: '/register' })).status, 201, 'a user of 256 characters is fine')
  t.equal((await s.app.longPoll.stats()).sessions, 1, 'no other session was created')
  t.notOk(raw.join('\n').includes('secret-header-value-1234'), 'the authorization header is never logged')
})

t.test('authorize: a throw of any kind is 403 LONGPOLL_FORBIDDEN with a log line naming the action', async (t) => {
  let thrown: unknown = null
  const { s, lines } = await logged(t, { authorize: () => { throw thrown } })
  const a = await register(s)
  for (const [what, value] of ODD) {
    thrown = value
    const before = lines.length
    assertError(t, await join(s, a.token, 'r'), 403, 'LONGPOLL_FORBIDDEN', `throws ${what}`)
    const line = lines.slice(before).find((l) => /authorize hook threw/.test(l.msg))
    t.ok(line !== undefined, `throws ${what}: logged`)
    t.equal(line?.action, 'join', 'with the action')
  }
  t.notOk(JSON.stringify(lines).includes(a.token), 'no token in the log')
})

t.test('onMessage: a throw is 400 LONGPOLL_BAD_MESSAGE with a log line, unless it is an Error with a 4xx status and a string code', async (t) => {
  let thrown: unknown = null
  const { s, lines } = await logged(t, { rateLimit: false, onMessage: () => { throw thrown } })
  const a = await register(s)
  for (const [what, value] of ODD) {
    thrown = value
    const before = lines.length
    assertError(t, await send(s, a.token, { data: 1 }), 400, 'LONGPOLL_BAD_MESSAGE', `throws ${what}`)
    t.ok(lines.slice(before).some((l) => /onMessage threw/.test(l.msg)), `throws ${what}: logged`)
  }
  const passes: Array<[string, unknown, number, string]> = [
    ['418 with a code', Object.assign(new Error('teapot'), { statusCode: 418, code: 'APP_TEAPOT' }), 418, 'APP_TEAPOT'],
    ['422 with a code', Object.assign(new Error('no'), { statusCode: 422, code: 'APP_NO' }), 422, 'APP_NO']
  ]
  for (const [what, value, status, code] of passes) {
    thrown = value
    assertError(t, await send(s, a.token, { data: 1 }), status, code, what)
  }
  for (const [what, value] of [
    ['a 5xx with a code', Object.assign(new Error('boom'), { statusCode: 500, code: 'APP_BOOM' })],
    ['a 3xx with a code', Object.assign(new Error('moved'), { statusCode: 302, code: 'APP_MOVED' })],
    ['a 4xx with a number code', Object.assign(new Error('no'), { statusCode: 409, code: 7 })],
    ['a plain object with a 4xx and a code', { statusCode: 404, code: 'APP_GONE', message: 'gone' }]
  ] as Array<[string, unknown]>) {
    thrown = value
    assertError(t, await send(s, a.token, { data: 1 }), 400, 'LONGPOLL_BAD_MESSAGE', what)
  }
})

t.test('onSessionEnd: a throw of any kind is logged; the session ends, the server goes on', async (t) => {
  let thrown: unknown = null
  let calls = 0
  const { s, lines } = await logged(t, { onSessionEnd: () => { calls++; throw thrown } })
  for (const [what, value] of ODD) {
    thrown = value
    const a = await register(s)
    const before = lines.length
    const res = await endSession(s, a.token)
    t.equal(res.status, 204, `throws ${what}: DELETE /session is still 204`)
    t.ok(lines.slice(before).some((l) => l.level >= 50 && /onSessionEnd hook failed/.test(l.msg)), `throws ${what}: an error line`)
  }
  t.equal(calls, ODD.length, 'called once per ended session')
  thrown = new Error('async')
  const b = await register(s)
  t.equal(await s.app.longPoll.endSession(b.id), true, 'the decorator too')
  t.equal((await s.app.longPoll.stats()).sessions, 0)
})

t.test('registerRateLimit.key: a throw or a wrong result is logged and request.ip is used', async (t) => {
  let key: () => unknown = () => 'k'
  const { s, lines } = await logged(t, { registerRateLimit: { max: 2, timeWindow: 60_000, key: () => key() as string } })
  for (const [what, value] of ODD.slice(0, 4)) {
    key = () => { throw value }
    const before = lines.length
    const res = await s.request({ method: 'POST', path: '/register' })
    t.ok(res.status === 201 || res.status === 429, `throws ${what}: ${res.status}`)
    t.ok(lines.slice(before).some((l) => l.level >= 50 && /registerRateLimit.key threw/.test(l.msg)), `throws ${what}: logged`)
  }
  key = () => 5
  assertError(t, await s.request({ method: 'POST', path: '/register' }), 429, 'LONGPOLL_RATE_LIMITED', 'a number: counted under request.ip, which is over its limit')
  await waitFor(() => lines.some((l) => /neither a string nor null/.test(l.msg)), 'the log line')
  t.equal((await s.app.longPoll.stats()).sessions, 2, 'request.ip got its 2 registrations')
})
