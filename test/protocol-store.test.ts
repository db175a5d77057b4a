/**
 * PROTOCOL.md, the store outage paragraph: while the store cannot be reached, routes answer at
 * once with 503 LONGPOLL_STORE_UNAVAILABLE and retry-after, held polls are answered with it too,
 * and service resumes by itself when the store is back. The outage is simulated by a store that
 * wraps the in-memory one and rejects every call while "down" (as MailboxStore documents: any
 * rejection means the store is unavailable), announcing it with an `unavailable` event
 * (test/helpers/flaky-store.ts).
 */
import t from 'tap'
import { FlakyStore } from './helpers/flaky-store.js'
import { register, poll, pollOk, send, join, leave, members, endSession, assertError, type Reply } from './helpers/http.js'
import { start } from './helpers/server.js'
import { sleep, waitHeld } from './helpers/wait.js'

function assertUnavailable (t: Parameters<typeof assertError>[0], res: Reply, what: string): void {
  assertError(t, res, 503, 'LONGPOLL_STORE_UNAVAILABLE', what)
  t.match(res.headers['retry-after'], /^\d+$/, `${what}: retry-after in whole seconds`)
  t.ok(res.ms < 3000, `${what}: answered at once (${res.ms} ms)`)
}

t.test('store down: every route answers at once with 503 LONGPOLL_STORE_UNAVAILABLE and retry-after; then resumes', async (t) => {
  const store = new FlakyStore()
  const s = await start(t, { store, pollTimeout: 10_000, sweepInterval: 20 }, { listen: true })
  const a = await register(s, { rooms: ['r'] })
  const b = await register(s, { rooms: ['r'] })
  const before = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })

  store.setDown(true)
  assertUnavailable(t, await s.request({ method: 'POST', path: '/register' }), 'register')
  assertUnavailable(t, await poll(s, a.token, { cursor: before.cursor }), 'poll (would otherwise be held 10 s)')
  assertUnavailable(t, await send(s, a.token, { data: 'lost?', room: 'r' }), 'messages')
  assertUnavailable(t, await join(s, a.token, 'q'), 'join')
  assertUnavailable(t, await leave(s, a.token, 'r'), 'leave')
  assertUnavailable(t, await members(s, a.token, 'r'), 'members')
  assertUnavailable(t, await endSession(s, b.token), 'DELETE /session')
  await sleep(100) // sweeps fail meanwhile: the server must survive them

  store.setDown(false)
  t.equal((await s.request({ method: 'POST', path: '/register' })).status, 201, 'register works again')
  const p = await pollOk(s, a.token, { cursor: before.cursor, wait: 0 })
  t.same(p.messages, [], 'the refused message was not half-published')
  t.equal((await send(s, a.token, { data: 'back', room: 'r' })).status, 202)
  const q = await pollOk(s, b.token, { cursor: b.cursor, wait: 0 })
  t.same(q.messages.filter((m) => m.type === 'message').map((m) => m.data), ['back'], 'sessions made before the outage work on')
  t.equal((await members(s, a.token, 'r')).status, 200)
})

t.test('store down: held polls are answered with 503, never left hanging', async (t) => {
  const store = new FlakyStore()
  const s = await start(t, { store, pollTimeout: 10_000 }, { listen: true })
  const sessions = await Promise.all([register(s), register(s)])
  const polls = sessions.map((x) => poll(s, x.token, { cursor: x.cursor }))
  await waitHeld(s, 2)
  const at = Date.now()
  store.setDown(true)
  for (const res of await Promise.all(polls)) assertUnavailable(t, res, 'held poll')
  t.ok(Date.now() - at < 3000, 'answered when the store went down')
  store.setDown(false)
  await waitHeld(s, 0)
  const m = await s.app.longPoll.send(sessions[0].id, 'after')
  const p = await pollOk(s, sessions[0].token, { cursor: sessions[0].cursor })
  t.same(p.messages.map((x) => x.id), [m.id], 'polling resumes')
})
