/**
 * PROTOCOL.md, "Session expiry" in real time: expiry is a matter of time (not of sweeping), a
 * session with a held poll does not expire, and its idle time counts from the moment that poll
 * is answered (or abandoned by the client). sessionTtl is 1 s, with margins of several hundred
 * milliseconds on each side so that a loaded machine does not change the outcome.
 */
import t from 'tap'
import { register, poll, members, send, assertError } from './helpers/http.js'
import { start } from './helpers/server.js'
import { sleep, waitFor } from './helpers/wait.js'

t.test('sessionTtl: expiry is a matter of time, not of sweeping: an idle token stops working even between sweeps', async (t) => {
  const s = await start(t, { pollTimeout: 5000, sessionTtl: 1000, sweepInterval: 60_000, rateLimit: false })
  const idle = await register(s, { rooms: ['r'] })
  const busy = await register(s, { rooms: ['r'] })
  await s.app.longPoll.send(idle.id, 'queued for the idle one')
  const until = Date.now() + 2200
  let alive = 0
  let polls = 0
  while (Date.now() < until) {
    polls++
    if ((await poll(s, busy.token, { wait: 0 })).status === 200) alive++
    await sleep(100)
  }
  t.equal(alive, polls, `the active session stayed alive (${alive}/${polls})`)
  assertError(t, await poll(s, idle.token, { wait: 0 }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'idle for 2.2 s, sessionTtl 1 s, no sweep yet')
  const list = await members(s, busy.token, 'r')
  t.same(list.body.members.map((m: { id: string }) => m.id), [busy.id], 'members lists only sessions that are not expired')
  t.same((await s.app.longPoll.members()).map((m) => m.id), [busy.id], 'and so does app.longPoll.members()')
  assertError(t, await send(s, busy.token, { data: 1, to: idle.id }), 404, 'LONGPOLL_NO_SUCH_SESSION', 'to an expired, unswept session')
})

t.test('sessionTtl: a session with a held poll does not expire; its idle time counts from the answer', async (t) => {
  const s = await start(t, { pollTimeout: 2500, sessionTtl: 1000, sweepInterval: 50 }, { listen: true })
  const a = await register(s)
  const held = poll(s, a.token, { cursor: a.cursor })
  await sleep(1800)
  t.same((await s.app.longPoll.members()).map((m) => m.id), [a.id], 'alive while its poll is held (1.8 s > sessionTtl)')
  const res = await held
  t.equal(res.status, 200, 'the held poll is answered normally at the hold time, not with 401')
  t.same(res.body.messages, [])
  await sleep(100)
  const next = await poll(s, a.token, { cursor: res.body.cursor, wait: 0 })
  t.equal(next.status, 200, '100 ms after the answer the session is alive (2.6 s after the poll began)')
  await sleep(1800)
  assertError(t, await poll(s, a.token, { wait: 0 }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'idle for 1.8 s after the last answer: expired')
})

t.test('sessionTtl: a poll held then aborted by the client kept the session alive; idle time counts from its end', async (t) => {
  const s = await start(t, { pollTimeout: 5000, sessionTtl: 1000, sweepInterval: 50 }, { listen: true })
  const a = await register(s)
  const ac = new AbortController()
  const held = poll(s, a.token, { cursor: a.cursor, signal: ac.signal })
  await sleep(1800)
  ac.abort()
  await t.rejects(held)
  await waitFor(async () => (await s.app.longPoll.stats()).heldPolls === 0, 'the aborted poll to be released')
  await sleep(100)
  t.equal((await poll(s, a.token, { cursor: a.cursor, wait: 0 })).status, 200, 'alive 100 ms after the abort (1.9 s after the poll began)')
})
