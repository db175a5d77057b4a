/**
 * Edges of the routes that only a misbehaving store or hook reaches: a refund the store fails
 * (the refused send is still answered as refused), `onMessage` returning data that is not JSON,
 * and a poll with a bad query whose token check meets a slow or failing store.
 */
import t from 'tap'
import { FlakyStore } from './helpers/flaky-store.js'
import { assertError, register, send } from './helpers/http.js'
import { start } from './helpers/server.js'

t.test('a send refused after its rate slot was counted, with a store that fails the refund: still the refusal, logged', async (t) => {
  const store = new FlakyStore()
  const lines: string[] = []
  const s = await start(t, { store }, {
    fastify: { logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } }
  })
  const a = await register(s)
  store.failing.add('refund')
  assertError(t, await send(s, a.token, { room: 'nowhere', data: 'x' }), 403, 'LONGPOLL_NOT_A_MEMBER')
  t.ok(lines.some((l) => l.includes('refund failed')), 'the failed refund is logged')
  t.notOk(lines.some((l) => l.includes(a.token)), 'the token is not in the log')
  store.failing.delete('refund')
  t.equal((await send(s, a.token, { data: 'next' })).status, 202, 'the session sends on')
})

t.test('onMessage returning data that JSON cannot carry: 400 LONGPOLL_BAD_MESSAGE, nothing stored', async (t) => {
  const values: unknown[] = [10n, undefined, () => 1]
  let i = 0
  const s = await start(t, { onMessage: () => ({ data: values[i++] }) })
  const a = await register(s)
  for (const what of ['a BigInt', 'undefined', 'a function']) {
    assertError(t, await send(s, a.token, { data: 'x' }), 400, 'LONGPOLL_BAD_MESSAGE', what)
  }
  t.equal((await s.app.longPoll.stats()).queued, 0, 'nothing was stored')
})

t.test('a poll with a bad query: 400 when the token is good, 401 when not, 503 when the store fails, also with a store that answers late', async (t) => {
  const store = new FlakyStore()
  const s = await start(t, { store })
  const a = await register(s)
  const bad = (token: string): Promise<Awaited<ReturnType<typeof s.request>>> =>
    s.request({ path: '/poll?wait=soon', token })
  assertError(t, await bad(a.token), 400, undefined, 'good token, bad wait')
  const unknown = await bad('x'.repeat(43))
  assertError(t, unknown, 401, 'LONGPOLL_UNKNOWN_SESSION', 'unknown token, bad wait')
  t.equal(unknown.headers['www-authenticate'], 'Bearer')
  store.failing.add('authenticate')
  const failed = await bad(a.token)
  assertError(t, failed, 503, 'LONGPOLL_STORE_UNAVAILABLE', 'store fails')
  t.equal(failed.headers['retry-after'], '1')
})
