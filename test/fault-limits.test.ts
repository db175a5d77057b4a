/**
 * Abuse of the limits a deployment relies on (PROTOCOL.md "Mailbox", `POST /register`,
 * `POST /messages`; DESIGN.md "Everything a client can make the server hold is bounded"):
 * a consumer that never polls, a registration flood beyond maxSessions, and a sender that keeps
 * hitting the per-session rate limit. In each case the abuser is bounded and the other sessions
 * keep working.
 */
import t from 'tap'
import { assertError, endSession, httpCall, poll, pollOk, register, send, type Reply, type Session } from './helpers/http.js'
import { start, type TestServer } from './helpers/server.js'
import { sleep, waitFor, waitHeld } from './helpers/wait.js'

/** A client that keeps a held poll open and records what it receives, until it has `total` messages. */
function follower (s: TestServer, session: Session, total: number): { ids: string[], missed: number, done: Promise<void> } {
  const state = { ids: [] as string[], missed: 0, done: Promise.resolve() }
  state.done = (async () => {
    let cursor = session.cursor
    const deadline = Date.now() + 20_000
    while (state.ids.length < total && Date.now() < deadline) {
      const p = await pollOk(s, session.token, { cursor })
      cursor = p.cursor
      state.missed += p.missed
      for (const m of p.messages) state.ids.push(m.id)
    }
  })()
  return state
}

t.test('a consumer that never polls: its mailbox stays at maxMailboxMessages, its next poll reports the rest as missed; others get everything', async (t) => {
  const MAX = 20
  const TOTAL = 600
  const BATCH = 10
  const s = await start(t, { maxMailboxMessages: MAX, pollTimeout: 3000, rateLimit: false }, { listen: true })
  const slow = await register(s)
  const active = await Promise.all(Array.from({ length: 4 }, () => register(s)))
  const followers = active.map((x) => follower(s, x, TOTAL))
  await waitHeld(s, active.length)

  const published: string[] = []
  let maxQueued = 0
  for (let b = 0; b < TOTAL / BATCH; b++) {
    for (let i = 0; i < BATCH; i++) published.push((await s.app.longPoll.broadcast({ n: published.length })).id)
    // The active sessions keep up (no claim about how fast: only that they get there).
    await waitFor(() => followers.every((f) => f.ids.length === published.length), `followers to receive ${published.length} messages`, 10_000)
    const st = await s.app.longPoll.stats()
    maxQueued = Math.max(maxQueued, st.queued)
    if (st.queued > MAX * st.sessions) t.fail(`after ${published.length} messages: queued ${st.queued} > ${MAX} x ${st.sessions}`)
  }
  await Promise.all(followers.map((f) => f.done))

  // Only the slow session's mailbox is full; the others hold at most their last unacknowledged batch.
  t.ok(maxQueued <= MAX + active.length * BATCH, `stats.queued peaked at ${maxQueued} (bound ${MAX} slow + ${active.length} x ${BATCH} unacknowledged)`)

  for (const [k, f] of followers.entries()) {
    t.equal(f.missed, 0, `active session ${k}: nothing missed`)
    t.same(f.ids, published, `active session ${k}: all ${TOTAL} messages, in order`)
  }

  const first = await pollOk(s, slow.token, { cursor: slow.cursor, wait: 0 })
  t.equal(first.missed, TOTAL - MAX, `the slow session's first poll reports ${TOTAL - MAX} missed`)
  t.same(first.messages.map((m) => m.id), published.slice(-MAX), 'and returns the newest maxMailboxMessages messages, in order')
  // Store v2 counts a drop when the mailbox is read (as the `missed` it reports).
  t.equal((await s.app.longPoll.stats()).dropped, TOTAL - MAX, 'exactly the slow session\'s overflow was dropped')
  const second = await pollOk(s, slow.token, { cursor: first.cursor, wait: 0 })
  t.same([second.messages, second.missed], [[], 0], 'missed is reported once')
})

t.test('a registration flood beyond maxSessions: 503 LONGPOLL_SESSIONS_FULL with retry-after; existing sessions keep polling and sending', async (t) => {
  const MAX = 40
  const EXISTING = 10
  const FLOOD = 200
  // A flood from one address on purpose (the register rate limit has tests of its own): off here.
  const s = await start(t, { maxSessions: MAX, pollTimeout: 5000, rateLimit: false, registerRateLimit: false }, { listen: true })
  const existing = await Promise.all(Array.from({ length: EXISTING }, () => register(s)))
  const held = existing.map((x) => pollOk(s, x.token, { cursor: x.cursor }))
  await waitHeld(s, EXISTING)

  const port = s.port as number
  const flood = async (n: number): Promise<Reply[]> =>
    await Promise.all(Array.from({ length: n }, () => httpCall(port, s.prefix, { method: 'POST', path: '/register', json: {} })))
  const replies = await flood(FLOOD)
  const created = replies.filter((r) => r.status === 201)
  const refused = replies.filter((r) => r.status !== 201)
  t.equal(created.length, MAX - EXISTING, `${created.length} of ${FLOOD} registrations accepted: up to maxSessions`)
  t.equal(refused.length, FLOOD - (MAX - EXISTING), 'the rest refused')
  const bad = refused.filter((r) => r.status !== 503 || r.body?.code !== 'LONGPOLL_SESSIONS_FULL' || !/^[1-9]\d*$/.test(String(r.headers['retry-after'])))
  t.equal(bad.length, 0, 'every refusal is 503 LONGPOLL_SESSIONS_FULL with retry-after in whole seconds')
  assertError(t, refused[0], 503, 'LONGPOLL_SESSIONS_FULL', 'a refused registration')

  let st = await s.app.longPoll.stats()
  t.equal(st.sessions, MAX, 'sessions stop at maxSessions')
  t.equal(st.heldPolls, EXISTING, 'the existing held polls are still held')

  // Existing sessions still work: a message from one of them answers every held poll.
  const sender = existing[0]
  const sent = await send(s, sender.token, { data: 'still here' })
  t.equal(sent.status, 202, 'an existing session can send')
  const answers = await Promise.all(held)
  t.ok(answers.every((a) => a.messages.length === 1 && a.messages[0].id === sent.body.id), 'every held poll of the existing sessions got the message')
  const next = await pollOk(s, existing[1].token, { cursor: answers[1].cursor, wait: 0 })
  t.same(next.messages, [], 'and keeps polling normally')

  // A second flood changes nothing; a freed slot is taken once.
  const again = await flood(50)
  t.ok(again.every((r) => r.status === 503), 'a second flood is refused entirely')
  st = await s.app.longPoll.stats()
  t.equal(st.sessions, MAX, 'refused registrations leave nothing behind')
  t.equal((await endSession(s, existing[2].token)).status, 204, 'an existing session ends')
  const retry = await flood(5)
  t.equal(retry.filter((r) => r.status === 201).length, 1, 'one slot freed: exactly one of 5 concurrent registrations gets it')
})

t.test('rate limit: the limited session gets 429 with retry-after; others are unaffected; rejected sends never count or arrive', async (t) => {
  const MAX = 5
  const s = await start(t, { rateLimit: { max: MAX, timeWindow: 1000 }, pollTimeout: 3000 }, { listen: true })
  const a = await register(s)
  const b = await register(s)
  const reader = await register(s)

  for (let i = 0; i < MAX; i++) t.equal((await send(s, a.token, { data: `a${i}`, to: reader.id })).status, 202, `a: send ${i + 1} accepted`)
  const limitedAt = Date.now()
  const rejected: Reply[] = []
  for (let i = 0; i < 20; i++) rejected.push(await send(s, a.token, { data: `rejected${i}`, to: reader.id }))
  t.ok(rejected.every((r) => r.status === 429 && r.body?.code === 'LONGPOLL_RATE_LIMITED'), '20 more sends in the window: all 429 LONGPOLL_RATE_LIMITED')
  assertError(t, rejected[0], 429, 'LONGPOLL_RATE_LIMITED', 'a rejected send')
  const retryAfter = rejected.map((r) => String(r.headers['retry-after']))
  t.ok(retryAfter.every((v) => v === '1'), `retry-after is whole seconds, rounded up, within the 1 s window (${[...new Set(retryAfter)].join(', ')})`)

  // Another session is not limited by a's window.
  for (let i = 0; i < MAX; i++) t.equal((await send(s, b.token, { data: `b${i}`, to: reader.id })).status, 202, `b: send ${i + 1} accepted while a is limited`)
  // Polls of the limited session still work.
  t.equal((await poll(s, a.token, { cursor: a.cursor, wait: 0 })).status, 200, 'a can still poll')

  // After retry-after: a full window again (the 20 rejected sends neither counted nor extended the window).
  await waitFor(() => Date.now() - limitedAt >= 1000 + 50, 'the window to pass', 5000, 20)
  const second: number[] = []
  for (let i = 0; i < MAX + 1; i++) second.push((await send(s, a.token, { data: `again${i}`, to: reader.id })).status)
  t.same(second, [...Array(MAX).fill(202), 429], `after the window: ${MAX} accepted, then limited again`)

  const got = await pollOk(s, reader.token, { cursor: reader.cursor, wait: 0 })
  const data = got.messages.map((m) => m.data)
  t.same(data, [
    ...Array.from({ length: MAX }, (_, i) => `a${i}`),
    ...Array.from({ length: MAX }, (_, i) => `b${i}`),
    ...Array.from({ length: MAX }, (_, i) => `again${i}`)
  ], 'the recipient got exactly the accepted messages, none of the rejected ones')
})

// The limit is checked in onRequest, before the message is stored: concurrent sends of one session
// must not all pass the check before any is counted (the limiter takes the slot when it checks and
// gives it back when the send is refused; 5cbff8d), most visibly with a slow onMessage hook or store.
t.test('rate limit: concurrent sends of one session, valid and refused mixed, never exceed max per window', async (t) => {
  const MAX = 5
  const s = await start(t, {
    rateLimit: { max: MAX, timeWindow: 60_000 },
    // An application hook that takes a moment (moderation, a database): common in deployments.
    onMessage: async () => { await sleep(20); return true }
  }, { listen: true })
  const a = await register(s)
  const reader = await register(s)
  // 10 refused sends at once (unknown session: 404): they take slots at the check and must give them back.
  const refused = await Promise.all(Array.from({ length: 10 }, (_, i) => send(s, a.token, { data: i, to: 'nobody' })))
  t.ok(refused.every((r) => r.status === 404 || r.status === 429) && refused.filter((r) => r.status === 404).length >= MAX,
    `10 concurrent sends to an unknown session: ${refused.filter((r) => r.status === 404).length} x 404, the rest 429 while the slots were taken`)
  // Then 30 at once: even ones valid, odd ones refused again.
  const replies = await Promise.all(Array.from({ length: 30 }, (_, i) =>
    send(s, a.token, { data: i, to: i % 2 === 0 ? reader.id : 'nobody' })))
  const accepted = replies.filter((r) => r.status === 202).length
  t.ok(accepted >= 1 && accepted <= MAX, `${accepted} of 30 concurrent sends accepted, at most max = ${MAX}`)
  t.ok(replies.every((r) => [202, 404, 429].includes(r.status)), 'the others are 404 (unknown session) or 429')
  // The refused ones gave their slots back: the rest of the window's quota is still there, no more.
  const later: number[] = []
  for (let i = 0; i < MAX + 1; i++) later.push((await send(s, a.token, { data: `later${i}`, to: reader.id })).status)
  t.same(later, [...Array(MAX - accepted).fill(202), 429, ...Array(accepted).fill(429)].slice(0, MAX + 1),
    `then exactly ${MAX - accepted} more accepted in the window, then 429`)
  const got = await pollOk(s, reader.token, { cursor: reader.cursor, wait: 0 })
  t.equal(got.messages.length, MAX, `the recipient got exactly max = ${MAX} messages`)
})
