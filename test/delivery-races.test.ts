/**
 * Held polls (lib/held-poll.ts) when the answers of store calls come late, as they do from a store
 * over the network: publishes, newer polls and shutdown arriving between a store call (`poll`,
 * which authenticates, reads and begins the hold in one call; `read` after a wake-up) and its
 * answer; a store that fails some calls only; a newer poll taken by another instance. The store is
 * the in-memory one wrapped by test/helpers/flaky-store.ts, which holds back the answers of one
 * method on cue. Real HTTP on 127.0.0.1, so that held polls, `connection: close` and `app.close()`
 * behave as for real clients.
 */
import t, { type Test } from 'tap'
import { FlakyStore } from './helpers/flaky-store.js'
import { assertError, poll, pollOk, register, send, type Session } from './helpers/http.js'
import { start, type TestServer } from './helpers/server.js'
import { waitFor, waitHeld } from './helpers/wait.js'

const HOLD = 10_000

/** A listening server on a FlakyStore, polls held up to 10 s, and two sessions. */
async function setup (t: Test): Promise<{ store: FlakyStore, s: TestServer, a: Session, b: Session }> {
  const store = new FlakyStore()
  const s = await start(t, { store, pollTimeout: HOLD }, { listen: true })
  return { store, s, a: await register(s), b: await register(s) }
}

t.test('a message published while the poll\'s store call (read, then hold) is on its way wakes the poll at once', async (t) => {
  const { store, s, a, b } = await setup(t)
  store.hold('poll')
  const held = pollOk(s, a.token, { cursor: a.cursor })
  await waitFor(() => store.waiting('poll') === 1, 'the store call of the poll')
  // The store found nothing and began the hold, but its answer is not back: the wake-up in
  // between must not be lost.
  t.equal((await send(s, b.token, { to: a.id, data: 'in between' })).status, 202)
  store.release('poll')
  const answer = await held
  t.same(answer.messages.map((m) => m.data), ['in between'], 'the poll got the message')
  t.equal(answer.missed, 0)
})

t.test('two messages published while the poll\'s store call is on its way: both, in order, once', async (t) => {
  const { store, s, a, b } = await setup(t)
  store.hold('poll')
  const held = pollOk(s, a.token, { cursor: a.cursor })
  await waitFor(() => store.waiting('poll') === 1, 'the store call of the poll')
  t.equal((await send(s, b.token, { to: a.id, data: 'during the read' })).status, 202)
  t.equal((await send(s, b.token, { to: a.id, data: 'and another' })).status, 202)
  store.release('poll')
  const answer = await held
  t.same(answer.messages.map((m) => m.data), ['during the read', 'and another'], 'both, in order')
  const next = await pollOk(s, a.token, { cursor: answer.cursor, wait: 0 })
  t.same(next.messages, [], 'nothing twice')
})

t.test('a held poll woken again while it reads answers with every message, once', async (t) => {
  const { store, s, a, b } = await setup(t)
  const held = pollOk(s, a.token, { cursor: a.cursor })
  await waitHeld(s, 1)
  store.hold('read')
  t.equal((await send(s, b.token, { to: a.id, data: 1 })).status, 202)
  await waitFor(() => store.waiting('read') === 1, 'the read the wake-up started')
  t.equal((await send(s, b.token, { to: a.id, data: 2 })).status, 202)
  store.release('read')
  const answer = await held
  t.same(answer.messages.map((m) => m.data), [1], 'answered with what the first read found')
  const next = await pollOk(s, a.token, { cursor: answer.cursor, wait: 0 })
  t.same(next.messages.map((m) => m.data), [2], 'the rest on the next poll: nothing lost, nothing twice')
})

t.test('two polls of a session whose store calls are both on their way: the older gets 409, the newer is held and answered', async (t) => {
  const { store, s, a, b } = await setup(t)
  store.hold('poll')
  const first = poll(s, a.token, { cursor: a.cursor })
  await waitFor(() => store.waiting('poll') === 1, 'the store call of the first poll')
  const second = pollOk(s, a.token, { cursor: a.cursor })
  await waitFor(() => store.waiting('poll') === 2, 'the store call of the second poll')
  store.release('poll')
  assertError(t, await first, 409, 'LONGPOLL_POLL_SUPERSEDED', 'the first poll')
  const [firstSeq, secondSeq] = store.begun
  t.ok((secondSeq as number) > (firstSeq as number), 'the second hold has the higher sequence')
  await waitHeld(s, 1)
  t.equal((await send(s, b.token, { to: a.id, data: 'to the second' })).status, 202)
  t.same((await second).messages.map((m) => m.data), ['to the second'], 'the second poll is held and answered')
})

t.test('a poll whose store call ends after shutdown began: 503 LONGPOLL_SHUTTING_DOWN, connection: close, its hold ended', async (t) => {
  const { store, s, a } = await setup(t)
  store.hold('poll')
  const late = poll(s, a.token, { cursor: a.cursor })
  await waitFor(() => store.waiting('poll') === 1, 'the store call of the poll')
  const closed = s.close()
  // preClose has run once the server stops listening (Fastify closes it right after the hooks).
  await waitFor(() => !s.app.server.listening, 'the server to stop listening')
  store.release('poll')
  const res = await late
  assertError(t, res, 503, 'LONGPOLL_SHUTTING_DOWN')
  t.equal(res.headers['retry-after'], '1')
  t.equal(res.headers.connection, 'close')
  await closed
  const seq = store.begun[0] as number
  t.ok(seq > 0, 'the store had begun a hold')
  t.same(store.ended, [{ sessionId: a.id, seq }], 'and that hold is ended in the store')
})

t.test('a store that fails only polls, or only reads after a wake-up: 503 with retry-after at once, then polling works', async (t) => {
  const { store, s, a, b } = await setup(t)
  store.failing.add('poll')
  const res = await poll(s, a.token, { cursor: a.cursor })
  assertError(t, res, 503, 'LONGPOLL_STORE_UNAVAILABLE', 'poll fails')
  t.equal(res.headers['retry-after'], '1', 'poll fails: retry-after')
  t.ok(res.ms < HOLD / 2, `poll fails: answered at once (${res.ms} ms), not at the end of the hold`)
  store.failing.delete('poll')

  const held = poll(s, a.token, { cursor: a.cursor })
  await waitHeld(s, 1)
  store.failing.add('read')
  t.equal((await send(s, b.token, { to: a.id, data: 'wakes a failing read' })).status, 202)
  const woken = await held
  assertError(t, woken, 503, 'LONGPOLL_STORE_UNAVAILABLE', 'read fails')
  t.equal(woken.headers['retry-after'], '1', 'read fails: retry-after')
  t.ok(woken.ms < HOLD / 2, `read fails: answered at once (${woken.ms} ms)`)
  store.failing.delete('read')

  await waitHeld(s, 0)
  const p = await pollOk(s, a.token, { cursor: a.cursor })
  t.same(p.messages.map((x) => x.data), ['wakes a failing read'], 'the next poll gets the message: nothing lost')
})

t.test('a poll event of a newer poll of the session (another instance took it) answers the held poll with 409', async (t) => {
  const { store, s, a } = await setup(t)
  const held = poll(s, a.token, { cursor: a.cursor })
  await waitHeld(s, 1)
  const seq = store.begun[0] as number
  store.emit({ type: 'poll', sessionId: a.id, seq })
  store.emit({ type: 'poll', sessionId: a.id, seq: seq - 1 })
  t.equal((await s.app.longPoll.stats()).heldPolls, 1, 'its own poll event, or an older one, changes nothing')
  store.emit({ type: 'poll', sessionId: a.id, seq: seq + 1 })
  assertError(t, await held, 409, 'LONGPOLL_POLL_SUPERSEDED', 'the held poll')
  t.equal((await s.app.longPoll.stats()).heldPolls, 0, 'no longer held here')
})
