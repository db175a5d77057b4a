/**
 * PROTOCOL.md, `GET /poll`: holding and answering, `wait`, cursors (absent, malformed, ahead),
 * one held poll per session (409), aborts, and `app.close()` answering held polls (503).
 */
import t from 'tap'
import { register, poll, pollOk, send, assertError } from './helpers/http.js'
import { start } from './helpers/server.js'
import { sleep, waitFor, waitHeld } from './helpers/wait.js'

t.test('a held poll is answered with no messages when the hold time passes', async (t) => {
  const s = await start(t, { pollTimeout: 300 }, { listen: true })
  const a = await register(s)
  t.equal(a.pollTimeoutMs, 300, 'register announces pollTimeoutMs')
  const res = await poll(s, a.token, { cursor: a.cursor })
  t.equal(res.status, 200)
  t.same(res.body.messages, [])
  t.equal(res.body.missed, 0)
  t.equal(typeof res.body.cursor, 'string')
  t.ok(res.ms >= 250, `held about pollTimeout (${res.ms} ms)`)
  t.ok(res.ms < 3000, `not much longer than pollTimeout (${res.ms} ms)`)
  // The cursor of the empty answer is valid.
  const next = await poll(s, a.token, { cursor: res.body.cursor, wait: 0 })
  t.equal(next.status, 200)
})

t.test('a held poll is answered as soon as a message arrives', async (t) => {
  const s = await start(t, { pollTimeout: 10_000 }, { listen: true })
  const a = await register(s)
  const held = poll(s, a.token, { cursor: a.cursor })
  await waitHeld(s, 1)
  await sleep(100)
  const at = Date.now()
  const m = await s.app.longPoll.send(a.id, 'wake up')
  const res = await held
  const after = Date.now() - at
  t.equal(res.status, 200)
  t.same(res.body.messages.map((x: { id: string }) => x.id), [m.id])
  t.ok(after < 3000, `answered right after the publish (${after} ms), not at the 10 s hold time`)
  t.equal((await s.app.longPoll.stats()).heldPolls, 0)
})

t.test('a room message wakes the held polls of the room\'s members, and only those', async (t) => {
  const s = await start(t, { pollTimeout: 10_000, rateLimit: false }, { listen: true })
  const inRoom = await Promise.all(Array.from({ length: 6 }, () => register(s, { rooms: ['r'] })))
  const outside = await Promise.all(Array.from({ length: 3 }, () => register(s, { rooms: ['q'] })))
  const cursors = new Map<string, string>()
  for (const x of [...inRoom, ...outside]) cursors.set(x.id, (await pollOk(s, x.token, { cursor: x.cursor, wait: 0 })).cursor)
  const held = inRoom.map((x) => poll(s, x.token, { cursor: cursors.get(x.id) }))
  const others = outside.map((x) => poll(s, x.token, { cursor: cursors.get(x.id) }))
  await waitHeld(s, 9)
  const sent = await send(s, inRoom[0].token, { data: 'to the room', room: 'r' })
  t.equal(sent.status, 202)
  for (const res of await Promise.all(held)) {
    t.equal(res.status, 200)
    t.same(res.body.messages.map((m: { id: string }) => m.id), [sent.body.id], 'each member\'s poll answered with the message')
  }
  await waitHeld(s, 3)
  t.equal((await s.app.longPoll.stats()).heldPolls, 3, 'the polls of non-members are still held')
  await s.app.longPoll.broadcast('to q', { room: 'q' })
  for (const res of await Promise.all(others)) t.same(res.body.messages.map((m: { data: unknown }) => m.data), ['to q'])
})

t.test('wait: 0 answers at once, a small wait shortens the hold, a large one is capped at pollTimeout', async (t) => {
  const s = await start(t, { pollTimeout: 6000 }, { listen: true })
  const a = await register(s)

  const zero = await poll(s, a.token, { cursor: a.cursor, wait: 0 })
  t.equal(zero.status, 200)
  t.same(zero.body.messages, [])
  t.ok(zero.ms < 2000, `wait=0 answered at once, not held 6 s (${zero.ms} ms)`)

  const short = await poll(s, a.token, { cursor: a.cursor, wait: 150 })
  t.equal(short.status, 200)
  t.ok(short.ms >= 130 && short.ms < 2500, `wait=150 held about 150 ms, not 6 s (${short.ms} ms)`)

  const small = await start(t, { pollTimeout: 400 }, { listen: true })
  const b = await register(small)
  const capped = await poll(small, b.token, { cursor: b.cursor, wait: 60_000 })
  t.equal(capped.status, 200)
  t.ok(capped.ms >= 350 && capped.ms < 3000, `wait=60000 capped at pollTimeout 400 (${capped.ms} ms)`)

  // wait=0 still returns queued messages.
  const m = await s.app.longPoll.send(a.id, 'queued')
  const got = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.same(got.messages.map((x) => x.id), [m.id])
})

t.test('wait: values other than an integer >= 0 are refused with 400', async (t) => {
  const s = await start(t, { pollTimeout: 500 })
  const a = await register(s)
  for (const wait of ['-1', '1.5', 'abc', 'NaN', '-0.5', '1e400x', '10ms']) {
    const res = await poll(s, a.token, { cursor: a.cursor, wait })
    assertError(t, res, 400, undefined, `wait=${wait}`)
  }
  const ok = await poll(s, a.token, { cursor: a.cursor, wait: '0' })
  t.equal(ok.status, 200, 'wait=0 is fine')
})

t.test('no cursor: the position after the last delivered message (at-most-once)', async (t) => {
  const s = await start(t, { pollTimeout: 500 })
  const a = await register(s)

  // Nothing delivered yet: a poll without cursor gets everything queued.
  const m1 = await s.app.longPoll.send(a.id, 1)
  const p1 = await pollOk(s, a.token, { wait: 0 })
  t.same(p1.messages.map((m) => m.id), [m1.id], 'fresh session: gets the queued message')

  // m1 was delivered but not acknowledged; a poll without cursor skips it.
  const m2 = await s.app.longPoll.send(a.id, 2)
  const p2 = await pollOk(s, a.token, { wait: 0 })
  t.same(p2.messages.map((m) => m.id), [m2.id], 'skips what was delivered before')
  const p3 = await pollOk(s, a.token, { wait: 0 })
  t.same(p3.messages, [], 'nothing new')

  // Its cursor works as any other.
  const m3 = await s.app.longPoll.send(a.id, 3)
  const p4 = await pollOk(s, a.token, { cursor: p3.cursor, wait: 0 })
  t.same(p4.messages.map((m) => m.id), [m3.id])
})

t.test('bad cursor: malformed, or ahead of anything issued to this session, is 400 LONGPOLL_BAD_CURSOR', async (t) => {
  const s = await start(t, { pollTimeout: 500 })
  const a = await register(s)
  const b = await register(s)

  for (const cursor of ['not a cursor', '%%%', '🙂', 'x'.repeat(3000), '-1', '1.5', ' ', '{}']) {
    const res = await poll(s, a.token, { cursor, wait: 0 })
    assertError(t, res, 400, 'LONGPOLL_BAD_CURSOR', `cursor ${JSON.stringify(cursor.slice(0, 20))}`)
  }

  // b receives three messages; a has three queued but none delivered yet. b's cursor is ahead of
  // anything issued to a (or, if cursors are bound to sessions, malformed for a): 400 either way.
  for (let i = 0; i < 3; i++) await s.app.longPoll.send(b.id, i)
  for (let i = 0; i < 3; i++) await s.app.longPoll.send(a.id, i)
  const pb = await pollOk(s, b.token, { cursor: b.cursor, wait: 0 })
  t.equal(pb.messages.length, 3)
  const ahead = await poll(s, a.token, { cursor: pb.cursor, wait: 0 })
  assertError(t, ahead, 400, 'LONGPOLL_BAD_CURSOR', 'cursor of another session, ahead')

  // a's own cursors work; the refused poll acknowledged nothing.
  const pa = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.equal(pa.messages.length, 3, 'a still gets its three messages')
})

t.test('409: a newer poll of the same session answers the older held one at once', async (t) => {
  const s = await start(t, { pollTimeout: 10_000 }, { listen: true })
  const a = await register(s)
  const b = await register(s)
  const first = poll(s, a.token, { cursor: a.cursor })
  const other = poll(s, b.token, { cursor: b.cursor })
  await waitHeld(s, 2)

  const second = poll(s, a.token, { cursor: a.cursor })
  const r1 = await first
  assertError(t, r1, 409, 'LONGPOLL_POLL_SUPERSEDED', 'older poll')
  t.ok(r1.ms < 5000, `answered at once, not at the hold time (${r1.ms} ms)`)

  // The newer poll is held, and gets the next message; b's poll was not disturbed.
  await waitHeld(s, 2)
  const m = await s.app.longPoll.broadcast('for both')
  const r2 = await second
  t.equal(r2.status, 200)
  t.same(r2.body.messages.map((x: { id: string }) => x.id), [m.id])
  const rb = await other
  t.equal(rb.status, 200)
  t.same(rb.body.messages.map((x: { id: string }) => x.id), [m.id])

  // A third poll after a finished one is not a supersede.
  const r3 = await poll(s, a.token, { cursor: r2.body.cursor, wait: 0 })
  t.equal(r3.status, 200)
})

t.test('409: a newer poll answered at once (wait=0) supersedes the held one too', async (t) => {
  const s = await start(t, { pollTimeout: 10_000, sessionTtl: 800, sweepInterval: 50 }, { listen: true })
  const a = await register(s)
  const held = poll(s, a.token, { cursor: a.cursor })
  await waitHeld(s, 1)
  const quick = await poll(s, a.token, { cursor: a.cursor, wait: 0 })
  t.equal(quick.status, 200, 'the newer poll is answered at once')
  assertError(t, await held, 409, 'LONGPOLL_POLL_SUPERSEDED', 'the older held poll')
  t.equal((await s.app.longPoll.stats()).heldPolls, 0)

  // The superseded hold ended in the store too: the session, idle now, expires (a held one would not).
  t.ok(await waitFor(async () => (await s.app.longPoll.stats()).sessions === 0, 'the idle session to expire', 5000), 'it expires after sessionTtl')
})

t.test('409 on a chain of supersedes: only the newest poll stays held', async (t) => {
  const s = await start(t, { pollTimeout: 10_000 }, { listen: true })
  const a = await register(s)
  const results = []
  for (let i = 0; i < 4; i++) {
    results.push(poll(s, a.token, { cursor: a.cursor }))
    await waitHeld(s, 1)
    if (i > 0) t.equal((await results[i - 1]).status, 409, `poll ${i} superseded poll ${i - 1}`)
  }
  await s.app.longPoll.send(a.id, 'x')
  t.equal((await results[3]).status, 200, 'the newest poll gets the message')
})

t.test('an aborted poll releases its slot', async (t) => {
  const s = await start(t, { pollTimeout: 10_000 }, { listen: true })
  const sessions = await Promise.all([register(s), register(s), register(s)])
  const acs = sessions.map(() => new AbortController())
  const polls = sessions.map((x, i) => poll(s, x.token, { cursor: x.cursor, signal: acs[i].signal }))
  await waitHeld(s, 3)
  acs[0].abort()
  acs[1].abort()
  await Promise.allSettled([polls[0], polls[1]])
  await waitHeld(s, 1)
  t.equal((await s.app.longPoll.stats()).heldPolls, 1, 'two slots released, one poll still held')
  acs[2].abort()
  await Promise.allSettled(polls)
  await waitHeld(s, 0)
  t.equal((await s.app.longPoll.stats()).heldPolls, 0, 'heldPolls back to 0')

  // The sessions keep working.
  await s.app.longPoll.send(sessions[0].id, 'still here')
  const p = await pollOk(s, sessions[0].token, { cursor: sessions[0].cursor, wait: 0 })
  t.same(p.messages.map((m) => m.data), ['still here'])
})

t.test('app.close() answers every held poll at once with 503 LONGPOLL_SHUTTING_DOWN and retry-after', async (t) => {
  const s = await start(t, { pollTimeout: 20_000 }, { listen: true })
  const sessions = await Promise.all([register(s), register(s), register(s)])
  const polls = sessions.map((x) => poll(s, x.token, { cursor: x.cursor }))
  await waitHeld(s, 3)
  const started = Date.now()
  await s.close()
  const closeMs = Date.now() - started
  t.ok(closeMs < 5000, `close completed promptly (${closeMs} ms, pollTimeout 20 s)`)
  for (const res of await Promise.all(polls)) {
    assertError(t, res, 503, 'LONGPOLL_SHUTTING_DOWN', 'held poll on close')
    t.match(res.headers['retry-after'], /^\d+$/, 'retry-after in whole seconds')
    t.ok(res.ms < 5000, `answered at once (${res.ms} ms)`)
  }
})

t.test('app.close() with no held polls completes promptly', async (t) => {
  const s = await start(t, { pollTimeout: 20_000 }, { listen: true })
  const a = await register(s)
  await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  const started = Date.now()
  await s.close()
  t.ok(Date.now() - started < 5000, 'closed')
})

t.test('authorization is required to poll', async (t) => {
  const s = await start(t, { pollTimeout: 500 })
  const a = await register(s)
  assertError(t, await s.request({ path: '/poll?wait=0' }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'no header')
  assertError(t, await poll(s, a.token + 'x', { wait: 0 }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'wrong token')
  assertError(t, await s.request({ path: '/poll?wait=0', headers: { authorization: a.token } }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'no Bearer scheme')
  assertError(t, await s.request({ path: '/poll?wait=0', headers: { authorization: 'Basic ' + a.token } }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'Basic scheme')
  assertError(t, await s.request({ path: '/poll?wait=0', headers: { authorization: 'Bearer ' } }), 401, 'LONGPOLL_UNKNOWN_SESSION', 'empty token')
})

t.test('a poll answered with an error acknowledges nothing', async (t) => {
  const s = await start(t, { pollTimeout: 10_000 }, { listen: true })
  const a = await register(s)
  const m = await s.app.longPoll.send(a.id, 'keep me')
  const first = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.same(first.messages.map((x) => x.id), [m.id])
  // Bad requests of the same session do not move its mailbox.
  await poll(s, a.token, { cursor: 'garbage!', wait: 0 })
  await poll(s, a.token, { cursor: first.cursor, wait: 'nope' })
  const again = await pollOk(s, a.token, { cursor: a.cursor, wait: 0 })
  t.same(again.messages.map((x) => x.id), [m.id])
})

t.test('two polls pipelined on one HTTP/1.1 connection: the first gets 409, the second is held and answered', async (t) => {
  const { connect } = await import('node:net')
  const s = await start(t, { pollTimeout: 10_000 }, { listen: true })
  const a = await register(s)
  const socket = connect(s.port as number, '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  let text = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => { text += chunk })
  const req = `GET /chat/poll?cursor=${a.cursor} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${a.token}\r\n\r\n`
  socket.write(req + req)
  // The second poll supersedes the first, whose 409 goes out; the second is then held (it has no
  // socket of its own until the first response is written, which must not count as "client gone").
  await waitFor(() => text.includes('409'), 'the 409 of the first poll')
  await waitHeld(s, 1)
  const m = await s.app.longPoll.send(a.id, 'pipelined')
  await waitFor(() => text.includes(m.id), 'the second poll answered with the message')
  const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((x) => x[1])
  t.same(statuses, ['409', '200'], 'the first superseded, the second answered, in order')
  t.equal((await s.app.longPoll.stats()).heldPolls, 0)
})
